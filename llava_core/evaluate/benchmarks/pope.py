"""POPE (COCO adversarial/popular/random), scored as ``llava/eval/eval_pope.py``.

Upstream filters the answers by the question's ``category`` and pairs them **by order** with the
``label`` lines of ``coco/coco_pope_<category>.json`` (JSON lines despite the extension). We pair
in question-file order (which is the answer order of every official run) and, unlike upstream,
check that each pair has the same image and question text: the 3,000-line random file of the
current POPE repository silently misaligns otherwise (LLaVA issue #626). The reported number is
the mean F1 over the splits, in percent.
"""

from __future__ import annotations

from pathlib import Path

from llava_core.evaluate.benchmarks.base import (
    Benchmark,
    EvalQuestion,
    extra_answer_count,
    read_question_file,
    require_file,
    result,
)
from llava_core.io import FormatError, read_jsonl

QUESTION_FILE = "llava_pope_test.jsonl"
LABEL_DIR = "coco"
IMAGE_DIR = "val2014"
SPLIT_ORDER = ("adversarial", "popular", "random")
LABEL_HINT = ("use output/coco/coco_pope_{split}.json from POPE commit e3e39262 "
              "(its random split has 2,910 lines; the current one has 3,000)")


def parse_yes_no(text: str) -> str:
    """``eval_pope.py``: keep the text before the first '.', drop commas, split on spaces; the
    answer is "no" if a word is exactly ``No``, ``not`` or ``no``, else "yes"."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def binary_metrics(preds: list[str], labels: list[str]) -> dict[str, float]:
    """TP/FP/TN/FN and accuracy, precision, recall, F1, yes-ratio (fractions) as upstream.

    A label is positive unless it is ``"no"``. Upstream divides by zero when no answer is "yes"
    (or no label is); here precision/recall/F1 are 0 in that case.
    """
    tp = fp = tn = fn = 0
    for p, lab in zip(preds, labels, strict=True):
        pos_pred, pos_lab = p != "no", lab != "no"
        if pos_pred and pos_lab:
            tp += 1
        elif pos_pred:
            fp += 1
        elif not pos_lab:
            tn += 1
        else:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = tp + fp + tn + fn
    return {"TP": tp, "FP": fp, "TN": tn, "FN": fn, "accuracy": (tp + tn) / n if n else 0.0,
            "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": sum(p != "no" for p in preds) / len(preds) if preds else 0.0}


class POPE(Benchmark):
    name = "pope"
    title = "POPE"
    paper_column = "POPE"
    folder = "pope"

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        return self.jsonl_questions(eval_root, QUESTION_FILE, IMAGE_DIR, "POPE question file",
                                    "llava_pope_test.jsonl from the official eval.zip")

    def read_labels(self, eval_root: Path, split: str, questions: list[dict]) -> list[str]:
        """The labels of one split, checked against that split's questions line by line."""
        path = require_file(self.root(eval_root) / LABEL_DIR / f"coco_pope_{split}.json",
                            f"POPE '{split}' annotation file", LABEL_HINT)
        rows = read_jsonl(path)
        if len(rows) != len(questions):
            raise FormatError(path, None, f"{len(rows)} label lines but {len(questions)} '{split}' questions "
                              "in llava_pope_test.jsonl; labels are paired by order", LABEL_HINT)
        labels = []
        for lineno, (row, q) in enumerate(zip(rows, questions, strict=True), 1):
            if "label" not in row:
                raise FormatError(path, lineno, "missing 'label'", "use the POPE output/coco/ files")
            first_line = q["text"].split("\n")[0]
            if ("text" in row and row["text"] != first_line) or (
                    "image" in row and "image" in q and row["image"] != q["image"]):
                raise FormatError(path, lineno, f"does not match question {q['question_id']!r} "
                                  f"({row.get('image')!r} {row.get('text')!r} vs {q.get('image')!r} "
                                  f"{first_line!r})", LABEL_HINT)
            labels.append(str(row["label"]))
        return labels

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        root = self.root(eval_root)
        questions = read_question_file(root / QUESTION_FILE, "POPE question file",
                                       required=("question_id", "text", "category"))
        by_id = self.match_answers(questions, answers)
        present = {q["category"] for q in questions}
        splits = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))

        metrics: dict[str, float] = {}
        breakdown: dict = {"splits": {}, "extra_answers": extra_answer_count(questions, answers)}
        for split in splits:
            qs = [q for q in questions if q["category"] == split]
            labels = self.read_labels(eval_root, split, qs)
            preds = [parse_yes_no(by_id[str(q["question_id"])]["text"]) for q in qs]
            m = binary_metrics(preds, labels)
            breakdown["splits"][split] = {**m, "n": len(qs)}
            for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
                metrics[f"{split}/{key}"] = m[key] * 100.0
        for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            metrics[key] = sum(metrics[f"{s}/{key}"] for s in splits) / len(splits)
        return result(metrics["f1"], metrics, breakdown)
