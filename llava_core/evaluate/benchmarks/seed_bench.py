"""SEED-Bench (v1, image + video middle frames), scored as ``convert_seed_for_submission.py``: the
answer text must equal the letter exactly (no parsing). The paper's "SEED" is the accuracy over all
questions, video included."""

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
from llava_core.io import FormatError, read_json, write_jsonl

QUESTION_FILE = "llava-seed-bench.jsonl"
ANNOTATION_FILE = "SEED-Bench.json"
UPLOAD_FILE = "seed_bench_upload.jsonl"


class SEEDBench(Benchmark):
    name = "seed_bench"
    title = "SEED-Bench"
    paper_column = "SEED"
    folder = "seed_bench"

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        return self.jsonl_questions(eval_root, QUESTION_FILE, "", "SEED-Bench question file",
                                    "llava-seed-bench.jsonl from eval.zip; images in SEED-Bench-image/ and "
                                    "SEED-Bench-video-image/ (extract_video_frames.py)")

    def _annotations(self, eval_root: Path) -> tuple[dict[str, dict], dict[int, str]]:
        path = require_file(self.root(eval_root) / ANNOTATION_FILE, "SEED-Bench annotation file",
                            "SEED-Bench.json from the SEED-Bench release ({'questions': [...], 'question_type': {...}})")
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
            raise FormatError(path, None, "expected {'questions': [...], 'question_type': {...}}")
        type_names = {int(v): k for k, v in (data.get("question_type") or {}).items()}
        return {str(q["question_id"]): q for q in data["questions"]}, type_names

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        root = self.root(eval_root)
        questions = read_question_file(root / QUESTION_FILE, "SEED-Bench question file")
        by_id = self.match_answers(questions, answers)
        annotations, type_names = self._annotations(eval_root)

        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        upload_rows = []
        for q in questions:
            ann = annotations.get(str(q["question_id"]))
            if ann is None or "answer" not in ann:
                raise FormatError(root / ANNOTATION_FILE, None, f"no annotation for question {q['question_id']!r}")
            text = by_id[str(q["question_id"])]["text"]
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
                     "extra_answers": extra_answer_count(questions, answers)}
        upload = None
        if out_dir is not None:
            upload = Path(out_dir) / UPLOAD_FILE
            write_jsonl(upload, upload_rows)
        return result(metrics["accuracy"], metrics, breakdown, upload)
