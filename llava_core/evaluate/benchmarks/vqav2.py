"""VQAv2 test-dev: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vqav2_for_submission.py``); the accuracy itself is computed by the EvalAI server."""

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

QUESTION_FILE = "llava_vqav2_mscoco_test-dev2015.jsonl"
FULL_TEST_FILE = "llava_vqav2_mscoco_test2015.jsonl"
IMAGE_DIR = "test2015"
UPLOAD_FILE = "vqav2_test-dev2015_upload.json"


class VQAv2(Benchmark):
    name = "vqav2"
    title = "VQAv2"
    paper_column = "VQAv2"
    folder = "vqav2"

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        return self.jsonl_questions(eval_root, QUESTION_FILE, IMAGE_DIR, "VQAv2 test-dev question file",
                                    "llava_vqav2_mscoco_test-dev2015.jsonl from the official eval.zip")

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        """Build the upload; the score is NaN because only the EvalAI server has the test answers."""
        root = self.root(eval_root)
        questions = read_question_file(root / QUESTION_FILE, "VQAv2 test-dev question file")
        self.match_answers(questions, answers)
        # The server wants every test2015 id: unanswered ones get "" (as upstream).
        full = read_question_file(root / FULL_TEST_FILE, "VQAv2 full test2015 question file",
                                  "llava_vqav2_mscoco_test2015.jsonl from eval.zip: the upload must cover it")
        texts = {str(a["question_id"]): a["text"] for a in answers}
        upload_rows = [{"question_id": q["question_id"],
                        "answer": evalai_process(texts[str(q["question_id"])]) if str(q["question_id"]) in texts
                        else ""} for q in full]
        upload = None
        if out_dir is not None:
            upload = Path(out_dir) / UPLOAD_FILE
            write_json(upload, upload_rows, indent=None)
        answered = sum(1 for q in full if str(q["question_id"]) in texts)
        breakdown = {"status": "submit the upload file to EvalAI (challenge 830, test-dev phase) for the score",
                     "test_dev_questions": len(questions), "upload_rows": len(upload_rows),
                     "upload_answered": answered, "extra_answers": extra_answer_count(questions, answers)}
        return result(math.nan, {}, breakdown, upload)
