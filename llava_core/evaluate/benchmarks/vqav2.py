"""VQAv2 test-dev: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vqav2_for_submission.py``); the accuracy itself is computed by the EvalAI server. A kit
that holds the questions' annotations (the VQA annotation format; the synthetic world writes them)
is also scored here, with the VQA accuracy."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evaluate.benchmarks.answer_processing import evalai_process, local_accuracy
from llava_core.evaluate.benchmarks.base import EVAL_ZIP, Benchmark, KitFile, Score


class VQAv2(Benchmark):
    name = "vqav2"
    title = "VQAv2"
    paper_column = "VQAv2"
    folder = "vqav2"
    files = {"questions": KitFile("llava_vqav2_mscoco_test-dev2015.jsonl", "test-dev question file", EVAL_ZIP),
             "full_test": KitFile("llava_vqav2_mscoco_test2015.jsonl", "full test2015 question file",
                                  f"{EVAL_ZIP}: the upload must cover it"),
             "images": KitFile("test2015", "image folder", "COCO", folder=True),
             # optional: EvalAI keeps the real test-dev answers; with them the score is local
             "annotations": KitFile("v2_mscoco_test-dev2015_annotations.json", "annotation file",
                                    "not public for test-dev (EvalAI); the VQA format {'annotations': "
                                    "[{question_id, answers: [{answer}] x10}]}")}
    answer_format = "short"
    upload_file = "vqav2_test-dev2015_upload.json"
    # Open-ended: a random string matches no human answer. (A constant "yes" does better, as some
    # questions are yes/no, but that depends on the answer distribution, not on the format.)
    chance = 0.0

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

