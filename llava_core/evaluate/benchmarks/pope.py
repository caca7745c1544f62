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

from llava_core.evalkit.pope import POPEKit
from llava_core.evaluate.benchmarks.base import Benchmark, Score
from llava_core.io import FormatError, read_jsonl

SPLIT_ORDER = ("adversarial", "popular", "random")



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


class POPE(POPEKit, Benchmark):
    def read_labels(self, eval_root: Path, split: str, questions: list[dict]) -> list[str]:
        """The labels of one split, checked against that split's questions line by line."""
        path, hint = self.require(eval_root, "labels", split=split), self.hint("labels", split=split)
        rows = read_jsonl(path)
        if len(rows) != len(questions):
            raise FormatError(path, None, f"{len(rows)} label lines but {len(questions)} '{split}' questions "
                              f"in {self.files['questions'].path}; labels are paired by order", hint)
        labels = []
        for lineno, (row, q) in enumerate(zip(rows, questions, strict=True), 1):
            if "label" not in row:
                raise FormatError(path, lineno, "missing 'label'", "use the POPE output/coco/ files")
            first_line = q["text"].split("\n")[0]
            if ("text" in row and row["text"] != first_line) or (
                    "image" in row and "image" in q and row["image"] != q["image"]):
                raise FormatError(path, lineno, f"does not match question {q['question_id']!r} "
                                  f"({row.get('image')!r} {row.get('text')!r} vs {q.get('image')!r} "
                                  f"{first_line!r})", hint)
            labels.append(str(row["label"]))
        return labels

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        got = self.answered(eval_root, answers, required=("question_id", "text", "category"))
        present = {q["category"] for q in got.questions}
        splits = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))

        metrics: dict[str, float] = {}
        breakdown: dict = {"splits": {}, "extra_answers": got.extra}
        for split in splits:
            pairs = [(q, a) for q, a in got.pairs() if q["category"] == split]
            labels = self.read_labels(eval_root, split, [q for q, _ in pairs])
            preds = [parse_yes_no(a["text"]) for _, a in pairs]
            m = binary_metrics(preds, labels)
            breakdown["splits"][split] = {**m, "n": len(pairs)}
            for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
                metrics[f"{split}/{key}"] = m[key] * 100.0
        for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            metrics[key] = sum(metrics[f"{s}/{key}"] for s in splits) / len(splits)
        return Score(metrics["f1"], metrics, breakdown)
