"""VizWiz test: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vizwiz_for_submission.py``); the accuracy is computed by the EvalAI server. A kit that
holds annotations (VizWiz's format; the synthetic world writes them) is also scored here."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evaluate.benchmarks.answer_processing import evalai_process, local_accuracy
from llava_core.evaluate.benchmarks.base import EVAL_ZIP, Benchmark, KitFile, Score


class VizWiz(Benchmark):
    name = "vizwiz"
    title = "VizWiz"
    paper_column = "VizWiz"
    folder = "vizwiz"
    files = {"questions": KitFile("llava_test.jsonl", "question file", EVAL_ZIP),
             "images": KitFile("test", "image folder", "VizWiz", folder=True),
             # optional: the test answers are on EvalAI only; with them the score is local
             "annotations": KitFile("test_annotations.json", "annotation file",
                                    "not public for test (EvalAI); VizWiz's format [{image, answers: "
                                    "[{answer}] x10}]")}
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
        metrics = {"unanswerable_ratio": unanswerable / len(upload_rows) * 100.0}
        if not self.path(eval_root, "annotations").is_file():
            return Score(math.nan, metrics, breakdown, upload)
        accuracy = local_accuracy(self.path(eval_root, "annotations"), got.pairs(), "image") * 100.0
        breakdown["status"] = "scored here against the kit's annotations; the upload is written too"
        return Score(accuracy, {**metrics, "accuracy": accuracy}, breakdown, upload)
