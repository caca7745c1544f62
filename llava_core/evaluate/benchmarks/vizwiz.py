"""VizWiz test: answers are normalised with the EvalAI processor and written as the EvalAI upload
(``convert_vizwiz_for_submission.py``); the accuracy is computed by the EvalAI server. A kit that
holds annotations (VizWiz's format; the synthetic world writes them) is also scored here."""

from __future__ import annotations

import math
from pathlib import Path

from llava_core.evalkit.vizwiz import VizWizKit
from llava_core.evaluate.benchmarks.answer_processing import evalai_process, local_accuracy
from llava_core.evaluate.benchmarks.base import Benchmark, Score


class VizWiz(VizWizKit, Benchmark):
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
