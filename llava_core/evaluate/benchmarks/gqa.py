"""GQA testdev-balanced: exact-match accuracy, as ``convert_gqa_for_eval.py`` + GQA ``eval.py``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from llava_core.evalkit.gqa import GQAKit
from llava_core.evaluate.benchmarks.base import Benchmark, Score, pct
from llava_core.io import FormatError, read_json


def normalize_prediction(text: str) -> str:
    """``convert_gqa_for_eval.py``: ``text.rstrip('.').lower()`` (no other cleaning)."""
    return text.rstrip(".").lower()


class GQA(GQAKit, Benchmark):
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        got = self.answered(eval_root, answers)
        gt_path = self.require(eval_root, "ground_truth")
        gt = read_json(gt_path)
        if not isinstance(gt, dict):
            raise FormatError(gt_path, None, f"expected a dict {{questionId: question}}, got {type(gt).__name__}")

        predictions = []
        correct = 0
        by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for q, ans in got.pairs():
            qid = str(q["question_id"])
            item = gt.get(qid)
            if not isinstance(item, dict) or "answer" not in item:
                raise FormatError(gt_path, None, f"no ground-truth answer for question {qid!r}",
                                  "the question file and the annotation file must be the same split")
            pred = normalize_prediction(ans["text"])
            predictions.append({"questionId": q["question_id"], "prediction": pred})
            ok = int(pred == item["answer"])
            correct += ok
            types = item.get("types") or {}
            for kind in ("structural", "semantic"):
                if types.get(kind):
                    cell = by_type[f"{kind}/{types[kind]}"]
                    cell[0] += ok
                    cell[1] += 1

        n = len(got.questions)
        accuracy = pct(correct, n)
        breakdown = {"correct": correct, "total": n, "extra_answers": got.extra,
                     "by_type": {k: pct(c, t) for k, (c, t) in sorted(by_type.items())}}
        return Score(accuracy, {"accuracy": accuracy}, breakdown, self.write_upload(out_dir, predictions))
