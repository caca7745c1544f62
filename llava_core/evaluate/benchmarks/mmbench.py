"""MMBench and MMBench-CN dev, prompted as ``model_vqa_mmbench.py --single-pred-prompt`` (one round).

The official number comes from the OpenCompass server (``convert_mmbench_for_submission.py``
writes the xlsx it takes), which applies CircularEval with a ChatGPT fallback for answers that do
not name a letter. Locally, when the TSV has an ``answer`` column (dev), we apply CircularEval with
rule-based letter matching only: an answer that names no option counts as wrong.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from llava_core.evaluate.benchmarks.base import (
    LETTER_SUFFIX,
    LONG_MAX_NEW_TOKENS,
    Benchmark,
    EvalQuestion,
    KitFile,
    Score,
    pct,
)
from llava_core.io import FormatError, atomic_write

ALL_OPTIONS = ("A", "B", "C", "D")
CN_SUFFIX = "请直接回答选项字母。"
CIRCULAR_STRIDE = 1_000_000  # the TSV holds shifted copies of question i at i + k * 1e6
UPLOAD_DROP = ["hint", "category", "source", "image", "comment", "l2-category"]
_LEADING_LETTER = re.compile(r"^\(?([A-D])(?:[.):：、]|\s|$)")


def is_none(value: Any) -> bool:
    """``model_vqa_mmbench.is_none``: None, NaN, or the strings 'nan'/'none' (any case)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.lower() in ("nan", "none")


def row_options(row: dict) -> list[str]:
    """Options A-D up to the first missing one."""
    options = []
    for ch in ALL_OPTIONS:
        value = row.get(ch)
        if is_none(value):
            break
        options.append(str(value))
    return options


def build_prompt(row: dict, options: list[str]) -> str:
    """``[hint\\n]question\\nA. opt\\nB. opt...`` (the answer row's ``prompt``, before the suffix)."""
    question = str(row["question"])
    if not is_none(row.get("hint")):
        question = f"{row['hint']}\n{question}"
    for ch, opt in zip(ALL_OPTIONS, options, strict=False):
        question += f"\n{ch}. {opt}"
    return question


def match_option(pred: str, options: list[str]) -> str | None:
    """Rule-based letter extraction: a bare letter, a leading ``X.``/``(X)``/``X)``, or exactly
    one option's text; ``None`` if nothing matches (OpenCompass would then ask ChatGPT)."""
    chars = ALL_OPTIONS[:len(options)]
    text = pred.strip()
    m = _LEADING_LETTER.match(text)
    if m and m.group(1) in chars:
        return m.group(1)
    norm = text.rstrip(".。").strip().lower()
    hits = [ch for ch, opt in zip(chars, options, strict=True) if opt.strip().rstrip(".。").lower() == norm]
    return hits[0] if len(hits) == 1 else None


def _image_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".jpg"


class MMBench(Benchmark):
    name = "mmbench"
    title = "MMBench"
    paper_column = "MMB"
    folder = "mmbench"
    files = {"tsv": KitFile("mmbench_dev_20230712.tsv", "TSV", "MMBench (OpenCompass)")}  # questions, base64 images
    answer_format = "letter"
    max_new_tokens = LONG_MAX_NEW_TOKENS
    # CircularEval: a k-option question counts only if all its k rotations are right, which a
    # uniform random answerer does with probability (1/k)^k: 25% (k=2), 3.7% (3), 0.39% (4); a
    # constant letter gets 0. The dev TSV's 4,377 rows over 1,164 questions (3.76 options on
    # average) put the mean between 1.2 (if every question with fewer than 4 options has 3) and
    # 3.3 (if they have 2): we take the middle.
    chance = 2.3
    suffix = LETTER_SUFFIX

    def read_rows(self, eval_root: Path) -> list[dict]:
        """The TSV rows (pandas, all cells as strings or NaN; ``index`` as int)."""
        import pandas as pd

        path = self.require(eval_root, "tsv")
        try:
            df = pd.read_table(path, dtype=str)
        except Exception as e:  # pandas parser errors carry their own line numbers
            raise FormatError(path, None, f"cannot read the TSV: {e}") from None
        missing = [c for c in ("index", "question", "A", "B") if c not in df.columns]
        if missing:
            raise FormatError(path, 1, f"missing column(s) {missing}")
        rows = df.to_dict("records")
        for lineno, row in enumerate(rows, 2):
            try:
                row["index"] = int(row["index"])
            except (TypeError, ValueError):
                raise FormatError(path, lineno, f"index {row['index']!r} is not an integer") from None
        return rows

    def image_dir(self, eval_root: Path) -> Path:
        return self.root(eval_root) / "images" / Path(self.files["tsv"].path).stem

    def _write_image(self, folder: Path, row: dict, tsv: Path, by_index: dict[int, dict]) -> str | None:
        b64 = row.get("image")
        if is_none(b64):
            return None
        if len(b64) < 16 and b64.strip().isdigit() and int(b64) != row["index"]:
            # some MMBench TSVs store a circular copy's image as the index of the original row
            if int(b64) not in by_index:
                raise FormatError(tsv, None, f"index {row['index']}: image refers to missing row {b64}")
            return self._write_image(folder, by_index[int(b64)], tsv, by_index)
        existing = list(folder.glob(f"{row['index']}.*"))
        if existing:
            return str(existing[0].absolute())
        try:
            data = base64.b64decode(b64, validate=False)
        except (binascii.Error, ValueError):
            raise FormatError(tsv, None, f"index {row['index']}: image is not valid base64") from None
        target = folder / f"{row['index']}{_image_suffix(data)}"
        with atomic_write(target, "wb") as fh:
            fh.write(data)
        return str(target.absolute())

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        """One round per row; the base64 images are decoded once into ``images/<tsv stem>/``."""
        rows = self.read_rows(eval_root)
        folder, tsv = self.image_dir(eval_root), self.path(eval_root, "tsv")
        by_index = {r["index"]: r for r in rows}
        out = []
        for row in rows:
            options = row_options(row)
            text = build_prompt(row, options) + "\n" + self.suffix
            extra = {"round_id": 0, "options": options, "option_char": list(ALL_OPTIONS[:len(options)])}
            out.append(EvalQuestion(row["index"], text, self._write_image(folder, row, tsv, by_index),
                                    self.max_new_tokens, extra))
        return out

    def write_submission(self, rows: list[dict], by_id: dict[str, dict], out_dir: Path) -> tuple[Path, str]:
        """``convert_mmbench_for_submission.py``: drop columns, insert ``prediction`` at position 6."""
        import pandas as pd

        df = pd.DataFrame(rows).drop(columns=UPLOAD_DROP, errors="ignore")
        df.insert(min(6, len(df.columns)), "prediction", [by_id[str(r["index"])]["text"] for r in rows])
        stem = Path(self.files["tsv"].path).stem
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            path = Path(out_dir) / f"{stem}_upload.tsv"
            with atomic_write(path) as fh:
                df.to_csv(fh, sep="\t", index=False)
            return path, "openpyxl is not installed: wrote a TSV; convert it to .xlsx before submitting"
        path = Path(out_dir) / f"{stem}_upload.xlsx"
        with atomic_write(path, "wb") as fh:
            df.to_excel(fh, index=False, engine="openpyxl")
        return path, "submit the .xlsx to the OpenCompass MMBench evaluator"

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        rows = self.read_rows(eval_root)
        by_id = self.match_answers([{"question_id": r["index"]} for r in rows], answers)
        upload, note = (None, "") if out_dir is None else self.write_submission(rows, by_id, out_dir)
        breakdown: dict = {"rows": len(rows), "upload_note": note} if note else {"rows": len(rows)}
        has_answer = "answer" in rows[0] and not any(is_none(r.get("answer")) for r in rows)
        if not has_answer:
            breakdown["status"] = "no 'answer' column (test split): the score comes from the OpenCompass server"
            return Score(math.nan, {}, breakdown, upload)

        groups: dict[int, list[bool]] = defaultdict(list)
        category: dict[int, str] = {}
        unmatched = row_correct = vanilla_correct = vanilla_total = 0
        for r in rows:
            options = row_options(r)
            letter = match_option(by_id[str(r["index"])]["text"], options)
            unmatched += letter is None
            ok = letter is not None and letter == str(r["answer"]).strip()
            row_correct += ok
            key = r["index"] % CIRCULAR_STRIDE
            groups[key].append(ok)
            if r["index"] < CIRCULAR_STRIDE:
                vanilla_total += 1
                vanilla_correct += ok
                if not is_none(r.get("category")):
                    category[key] = str(r["category"])
        circ = {k: all(v) for k, v in groups.items()}
        by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for k, ok in circ.items():
            cell = by_cat[category.get(k, "unknown")]
            cell[0] += ok
            cell[1] += 1
        metrics = {"circular_accuracy": pct(sum(circ.values()), len(circ)),
                   "vanilla_accuracy": pct(vanilla_correct, vanilla_total),
                   "row_accuracy": pct(row_correct, len(rows))}
        breakdown.update({"questions": len(circ), "unmatched_answers": unmatched,
                          "circular_by_category": {c: pct(a, t) for c, (a, t) in sorted(by_cat.items())},
                          "note": "rule-based letter matching, no ChatGPT fallback: may be below the server's"})
        return Score(metrics["circular_accuracy"], metrics, breakdown, upload)


class MMBenchCN(MMBench):
    name = "mmbench_cn"
    title = "MMBench-CN"
    paper_column = "MMB-CN"
    folder = "mmbench_cn"  # mmbench_cn.sh reads eval/mmbench_cn/ (Evaluation.md says eval/mmbench)
    files = {"tsv": KitFile("mmbench_dev_cn_20231003.tsv", "TSV", "MMBench (OpenCompass)")}
    # The MMBench dev questions, translated: MMBench's chance level (its own option counts are unknown here).
    suffix = CN_SUFFIX
