"""MME, scored as ``convert_answer_to_mme.py`` + the official ``eval_tool/calculation.py``.

Per subtask: ``acc`` = share of questions answered right, ``acc+`` = share of images (consecutive
question pairs) with both right; subtask score = 100 * (acc + acc+). Perception is the sum over the
10 perception subtasks (max 2000), cognition over the 4 cognition ones (max 800). The paper
reports perception.
"""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit import SHORT_ANSWER_SUFFIX
from llava_core.evalkit.mme import COGNITION, PERCEPTION, SPLIT_ANSWERS, SPLIT_IMAGES, YES_NO, MMEKit
from llava_core.evaluate.benchmarks.base import Benchmark, Score
from llava_core.io import FormatError, atomic_write


def parse_mme_answer(text: str) -> str:
    """``calculation.py``: lowercase; "yes"/"no" as-is; else "yes" if ``yes`` is in the first 4
    characters, else "no" if ``no`` is, else "other" (always wrong)."""
    text = text.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def official_question(text: str) -> list[str]:
    """The keys ``convert_answer_to_mme.py`` tries for a question: the short-answer suffix removed,
    then " Please answer yes or no." appended (single, then double space)."""
    if SHORT_ANSWER_SUFFIX in text:
        text = text.replace(SHORT_ANSWER_SUFFIX, "").strip()
    if YES_NO.strip() in text:
        return [text]
    return [text + YES_NO, text + " " + YES_NO]


def split_question_id(question_id: str) -> tuple[str, str]:
    """``"<subtask>/.../<name>.<ext>"`` -> (subtask, ``"<name>.txt"``) as upstream does."""
    return question_id.split("/")[0], question_id.split("/")[-1].split(".")[0] + ".txt"


class MME(MMEKit, Benchmark):
    def ground_truth(self, eval_root: Path, categories: set[str]) -> dict[tuple[str, str, str], str]:
        """``(subtask, file.txt, question) -> answer`` from the MME release, for ``categories``."""
        bench, hint = self.require(eval_root, "images"), self.hint("images")
        gt = {}
        for category in sorted(categories):
            cat_dir = bench / category
            qa_dir = cat_dir / SPLIT_ANSWERS if (cat_dir / SPLIT_IMAGES).exists() else cat_dir
            if not qa_dir.is_dir():
                raise FormatError(qa_dir, None, f"MME subtask folder for {category!r} not found", hint)
            for txt in sorted(qa_dir.glob("*.txt")):
                with open(txt, encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        if not line.strip():
                            continue
                        parts = line.strip().split("\t")
                        if len(parts) != 2:
                            raise FormatError(txt, lineno, "expected 'question<TAB>answer'")
                        gt[(category, txt.name, parts[0])] = parts[1]
        return gt

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        got = self.answered(eval_root, answers, per_row=True)
        question_file, bench = self.path(eval_root, "questions"), self.path(eval_root, "images")
        categories = [c for c in dict.fromkeys(split_question_id(str(q["question_id"]))[0] for q in got.questions)]
        gt = self.ground_truth(eval_root, set(categories))

        lines: dict[str, list[tuple[str, str, str, str]]] = {c: [] for c in categories}
        for q, ans in got.pairs():
            category, file = split_question_id(str(q["question_id"]))
            keys = official_question(q["text"])
            key = next((k for k in keys if (category, file, k) in gt), None)
            if key is None:
                raise FormatError(bench / category, None, f"no ground truth for {file} question "
                                  f"{keys[0]!r}", self.hint("images"))
            lines[category].append((file, key, gt[(category, file, key)], ans["text"]))

        metrics: dict[str, float] = {}
        breakdown: dict = {"subtasks": {}, "extra_answers": got.extra}
        for category, rows in lines.items():
            if len(rows) % 2:
                raise FormatError(question_file, None, f"subtask {category!r} has an odd number of "
                                  "questions; calculation.py pairs consecutive questions per image")
            correct = plus = other = 0
            for i in range(0, len(rows), 2):
                pair = rows[i:i + 2]
                if pair[0][0] != pair[1][0]:
                    raise FormatError(question_file, None, f"subtask {category!r}: consecutive questions "
                                      f"{pair[0][0]!r} and {pair[1][0]!r} are not about the same image")
                ok = 0
                for _file, _question, gt_ans, pred in pair:
                    if gt_ans.lower() not in ("yes", "no"):
                        raise FormatError(bench / category, None, f"ground truth {gt_ans!r} is not "
                                          "yes/no")
                    parsed = parse_mme_answer(pred)
                    other += parsed == "other"
                    ok += parsed == gt_ans.lower()
                correct += ok
                plus += ok == 2
            acc, acc_plus = correct / len(rows) * 100.0, plus / (len(rows) // 2) * 100.0
            metrics[f"{category}/acc"], metrics[f"{category}/acc_plus"] = acc, acc_plus
            metrics[f"{category}/score"] = acc + acc_plus
            breakdown["subtasks"][category] = {"questions": len(rows), "images": len(rows) // 2,
                                               "correct": correct, "both_correct": plus, "other": other}
        for group, names in (("perception", PERCEPTION), ("cognition", COGNITION)):
            present = [c for c in names if c in lines]
            metrics[group] = sum(metrics[f"{c}/score"] for c in present)
            breakdown[f"{group}_missing"] = [c for c in names if c not in lines]
        unknown = [c for c in lines if c not in PERCEPTION + COGNITION]
        if unknown:
            breakdown["unknown_subtasks"] = unknown

        upload = None
        if out_dir is not None:
            upload = Path(out_dir) / self.upload_file
            for category, rows in lines.items():
                with atomic_write(upload / f"{category}.txt") as fh:
                    for file, question, gt_ans, pred in rows:
                        fh.write("\t".join((file, question, gt_ans, pred)) + "\n")
        return Score(metrics["perception"], metrics, breakdown, upload)
