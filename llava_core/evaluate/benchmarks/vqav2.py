"""VQAv2 test-dev: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vqav2_for_submission.py``); the accuracy itself is computed by the EvalAI server. A kit
that holds the questions' annotations (the VQA annotation format; the synthetic world writes them)
is also scored here, with the VQA accuracy."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evalkit.vqav2 import VQAv2Kit
from llava_core.evaluate.benchmarks.answer_processing import evalai_process, local_accuracy
from llava_core.evaluate.benchmarks.base import Benchmark, Score


class VQAv2(VQAv2Kit, Benchmark):
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Build the upload; the score is NaN because only the EvalAI server has the test answers,
        unless the kit holds annotations (then the VQA accuracy of the test-dev answers)."""
        got = self.answered(eval_root, answers)
        # The server wants every test2015 id: unanswered ones get "" (as upstream).
        full = self.question_rows(eval_root, "full_test")
        texts = {str(a["question_id"]): a["text"] for a in answers}
        upload_rows = [{"question_id": q["question_id"],
                        "answer": evalai_process(texts[str(q["question_id"])]) if str(q["question_id"]) in texts
                        else ""} for q in full]
        upload = self.write_upload(out_dir, upload_rows)
        answered = sum(1 for q in full if str(q["question_id"]) in texts)
        breakdown = {"status": "submit the upload file to EvalAI (challenge 830, test-dev phase) for the score",
                     "test_dev_questions": len(got.questions), "upload_rows": len(upload_rows),
                     "upload_answered": answered, "extra_answers": got.extra}
        if not self.path(eval_root, "annotations").is_file():
            return Score(math.nan, {}, breakdown, upload)
        accuracy = local_accuracy(self.path(eval_root, "annotations"), got.pairs(), "question_id") * 100.0
        breakdown["status"] = "scored here against the kit's annotations; the upload is written too"
        return Score(accuracy, {"accuracy": accuracy}, breakdown, upload)

