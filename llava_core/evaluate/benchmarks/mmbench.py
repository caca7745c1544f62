"""MMBench and MMBench-CN dev, prompted as ``model_vqa_mmbench.py --single-pred-prompt`` (one round).

The official number comes from the OpenCompass server (``convert_mmbench_for_submission.py``
writes the xlsx it takes), which applies CircularEval with a ChatGPT fallback for answers that do
not name a letter. Locally, when the TSV has an ``answer`` column (dev), we apply CircularEval with
rule-based letter matching only: an answer that names no option counts as wrong.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from llava_core.data.formats import is_none, read_tsv_rows, tsv_image_files
from llava_core.evalkit.mmbench import ALL_OPTIONS, CIRCULAR_STRIDE, MMBenchCNKit, MMBenchKit
from llava_core.evaluate.benchmarks.base import (
    Benchmark,
    EvalQuestion,
    Score,
    pct,
)
from llava_core.io import atomic_write

UPLOAD_DROP = ["hint", "category", "source", "image", "comment", "l2-category"]
_LEADING_LETTER = re.compile(r"^\(?([A-D])(?:[.):：、]|\s|$)")


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


class MMBench(MMBenchKit, Benchmark):
    def read_rows(self, eval_root: Path) -> list[dict]:
        """The TSV rows (pandas, all cells as strings or NaN; ``index`` as int)."""
        return read_tsv_rows(self.require(eval_root, "questions"), required=("index", "question", "A", "B"))

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        """One round per row; the base64 images are decoded once into ``images/<tsv stem>/``."""
        rows = self.read_rows(eval_root)
        images = tsv_image_files(rows, self.image_folder(eval_root), self.path(eval_root, "questions"))
        out = []
        for row in rows:
            options = row_options(row)
            text = build_prompt(row, options) + "\n" + self.suffix
            extra = {"round_id": 0, "options": options, "option_char": list(ALL_OPTIONS[:len(options)])}
            out.append(EvalQuestion(row["index"], text, images[row["index"]], self.max_new_tokens, extra))
        return out

    def write_submission(self, rows: list[dict], by_id: dict[str, dict], out_dir: Path) -> tuple[Path, str]:
        """``convert_mmbench_for_submission.py``: drop columns, insert ``prediction`` at position 6."""
        import pandas as pd

        df = pd.DataFrame(rows).drop(columns=UPLOAD_DROP, errors="ignore")
        df.insert(min(6, len(df.columns)), "prediction", [by_id[str(r["index"])]["text"] for r in rows])
        stem = Path(self.files["questions"].path).stem
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


class MMBenchCN(MMBenchCNKit, MMBench):
    """MMBench-CN: MMBench's code on the translated TSV (its kit's files and prompt suffix)."""
