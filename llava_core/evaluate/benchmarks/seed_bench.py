"""SEED-Bench (v1, image + video middle frames), scored as ``convert_seed_for_submission.py``: the
answer text must equal the letter exactly (no parsing). The paper's "SEED" is the accuracy over all
questions, video included."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from llava_core.evalkit.seed_bench import SEEDBenchKit
from llava_core.evaluate.benchmarks.base import Benchmark, Score, pct
from llava_core.io import FormatError, read_json


class SEEDBench(SEEDBenchKit, Benchmark):
    def _annotations(self, eval_root: Path) -> tuple[dict[str, dict], dict[int, str]]:
        path = self.require(eval_root, "annotations")
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
            raise FormatError(path, None, "expected {'questions': [...], 'question_type': {...}}")
        type_names = {int(v): k for k, v in (data.get("question_type") or {}).items()}
        return {str(q["question_id"]): q for q in data["questions"]}, type_names

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        got = self.answered(eval_root, answers)
        annotations, type_names = self._annotations(eval_root)

        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        upload_rows = []
        for q, ans in got.pairs():
            ann = annotations.get(str(q["question_id"]))
            if ann is None or "answer" not in ann:
                raise FormatError(self.path(eval_root, "annotations"), None,
                                  f"no annotation for question {q['question_id']!r}")
            text = ans["text"]
            ok = int(text == ann["answer"])
            type_id = ann.get("question_type_id")
            type_name = type_names.get(int(type_id)) if str(type_id).isdigit() else None
            keys = ["all", f"type/{type_name or type_id}"]
            if ann.get("data_type"):
                keys.append(str(ann["data_type"]))
            for key in keys:
                counts[key][0] += ok
                counts[key][1] += 1
            upload_rows.append({"question_id": ann["question_id"], "prediction": text})
        metrics = {"accuracy": pct(*counts["all"])}
        for key in ("image", "video"):
            if key in counts:
                metrics[f"{key}_accuracy"] = pct(*counts[key])
        breakdown = {"correct": counts["all"][0], "total": counts["all"][1],
                     "by_type": {k[5:]: pct(c, t) for k, (c, t) in sorted(counts.items()) if k.startswith("type/")},
                     "extra_answers": got.extra}
        return Score(metrics["accuracy"], metrics, breakdown, self.write_upload(out_dir, upload_rows))
