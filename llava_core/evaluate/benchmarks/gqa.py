"""GQA testdev-balanced: exact-match accuracy, as ``convert_gqa_for_eval.py`` + GQA ``eval.py``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from llava_core.evaluate.benchmarks.base import (
    Benchmark,
    EvalQuestion,
    extra_answer_count,
    pct,
    read_question_file,
    require_file,
    result,
)
from llava_core.io import FormatError, read_json, write_json

QUESTION_FILE = "llava_gqa_testdev_balanced.jsonl"
GT_FILE = "data/testdev_balanced_questions.json"
IMAGE_DIR = "data/images"
PREDICTION_FILE = "testdev_balanced_predictions.json"


def normalize_prediction(text: str) -> str:
    """``convert_gqa_for_eval.py``: ``text.rstrip('.').lower()`` (no other cleaning)."""
    return text.rstrip(".").lower()


class GQA(Benchmark):
    name = "gqa"
    title = "GQA"
    paper_column = "GQA"
    folder = "gqa"

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        return self.jsonl_questions(eval_root, QUESTION_FILE, IMAGE_DIR, "GQA question file",
                                    "llava_gqa_testdev_balanced.jsonl from the official eval.zip")

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        root = self.root(eval_root)
        questions = read_question_file(root / QUESTION_FILE, "GQA question file")
        by_id = self.match_answers(questions, answers)
        gt_path = require_file(root / GT_FILE, "GQA ground truth",
                               "testdev_balanced_questions.json from GQA questions1.2.zip, "
                               "a dict {questionId: {'answer': ...}}")
        gt = read_json(gt_path)
        if not isinstance(gt, dict):
            raise FormatError(gt_path, None, f"expected a dict {{questionId: question}}, got {type(gt).__name__}")

        predictions = []
        correct = 0
        by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for q in questions:
            qid = str(q["question_id"])
            item = gt.get(qid)
            if not isinstance(item, dict) or "answer" not in item:
                raise FormatError(gt_path, None, f"no ground-truth answer for question {qid!r}",
                                  "the question file and the annotation file must be the same split")
            pred = normalize_prediction(by_id[qid]["text"])
            predictions.append({"questionId": q["question_id"], "prediction": pred})
            ok = int(pred == item["answer"])
            correct += ok
            types = item.get("types") or {}
            for kind in ("structural", "semantic"):
                if types.get(kind):
                    cell = by_type[f"{kind}/{types[kind]}"]
                    cell[0] += ok
                    cell[1] += 1

        n = len(questions)
        accuracy = pct(correct, n)
        breakdown = {"correct": correct, "total": n, "extra_answers": extra_answer_count(questions, answers),
                     "by_type": {k: pct(c, t) for k, (c, t) in sorted(by_type.items())}}
        upload = None
        if out_dir is not None:
            upload = Path(out_dir) / PREDICTION_FILE
            write_json(upload, predictions, indent=None)
        return result(accuracy, {"accuracy": accuracy}, breakdown, upload)
