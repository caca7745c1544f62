"""VizWiz test: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vizwiz_for_submission.py``); the accuracy is computed by the EvalAI server."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evaluate.benchmarks.answer_processing import evalai_process
from llava_core.evaluate.benchmarks.base import (
    Benchmark,
    EvalQuestion,
    extra_answer_count,
    read_question_file,
    result,
)
from llava_core.io import write_json

QUESTION_FILE = "llava_test.jsonl"
IMAGE_DIR = "test"
UPLOAD_FILE = "vizwiz_test_upload.json"


class VizWiz(Benchmark):
    name = "vizwiz"
    title = "VizWiz"
    paper_column = "VizWiz"
    folder = "vizwiz"

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        return self.jsonl_questions(eval_root, QUESTION_FILE, IMAGE_DIR, "VizWiz question file",
                                    "llava_test.jsonl from the official eval.zip")

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        """Build the upload ``[{"image", "answer"}]`` over every test item; the score is NaN."""
        root = self.root(eval_root)
        questions = read_question_file(root / QUESTION_FILE, "VizWiz question file",
                                       required=("question_id", "text", "image"))
        by_id = self.match_answers(questions, answers)  # upstream asserts every item is answered
        upload_rows = [{"image": q["image"], "answer": evalai_process(by_id[str(q["question_id"])]["text"])}
                       for q in questions]
        upload = None
        if out_dir is not None:
            upload = Path(out_dir) / UPLOAD_FILE
            write_json(upload, upload_rows, indent=None)
        unanswerable = sum(r["answer"] == "unanswerable" for r in upload_rows)
        breakdown = {"status": "submit the upload file to EvalAI (challenge 2185, test-dev phase) for the score",
                     "upload_rows": len(upload_rows), "unanswerable": unanswerable,
                     "extra_answers": extra_answer_count(questions, answers)}
        return result(math.nan, {"unanswerable_ratio": unanswerable / len(upload_rows) * 100.0}, breakdown,
                      upload)
