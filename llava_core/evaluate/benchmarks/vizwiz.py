"""VizWiz test: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vizwiz_for_submission.py``); the accuracy is computed by the EvalAI server."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evaluate.benchmarks.answer_processing import evalai_process
from llava_core.evaluate.benchmarks.base import EVAL_ZIP, Benchmark, KitFile, Score


class VizWiz(Benchmark):
    name = "vizwiz"
    title = "VizWiz"
    paper_column = "VizWiz"
    folder = "vizwiz"
    files = {"questions": KitFile("llava_test.jsonl", "question file", EVAL_ZIP),
             "images": KitFile("test", "image folder", "VizWiz", folder=True)}
    answer_format = "short"
    upload_file = "vizwiz_test_upload.json"
    # Open-ended: a random string matches no answer. (A constant "unanswerable" scores on the
    # unanswerable share of the test set, a property of the data, not of the format.)
    chance = 0.0

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Build the upload ``[{"image", "answer"}]`` over every test item; the score is NaN."""
        # upstream asserts every item is answered
        got = self.answered(eval_root, answers, required=("question_id", "text", "image"))
        upload_rows = [{"image": q["image"], "answer": evalai_process(a["text"])} for q, a in got.pairs()]
        upload = self.write_upload(out_dir, upload_rows)
        unanswerable = sum(r["answer"] == "unanswerable" for r in upload_rows)
        breakdown = {"status": "submit the upload file to EvalAI (challenge 2185, test-dev phase) for the score",
                     "upload_rows": len(upload_rows), "unanswerable": unanswerable, "extra_answers": got.extra}
        return Score(math.nan, {"unanswerable_ratio": unanswerable / len(upload_rows) * 100.0}, breakdown, upload)
