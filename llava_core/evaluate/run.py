"""Evaluate one benchmark: load questions, generate answers, score them, record the numbers."""

from __future__ import annotations

import logging
from pathlib import Path

from llava_core.data.formats import write_answers
from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.generate import generate_answers
from llava_core.io import write_json
from llava_core.model.build import load_trained

log = logging.getLogger(__name__)


def metric_keys(benchmark: str, result: dict) -> dict[str, float]:
    """The stable MLflow keys of a score: ``eval/<benchmark>/score`` and ``eval/<benchmark>/<metric>``."""
    out = {f"eval/{benchmark}/score": result["score"]}
    out.update({f"eval/{benchmark}/{k}": v for k, v in result["metrics"].items()})
    return out


def evaluate_benchmark(cfg, name: str, *, model_dir: Path, eval_root: Path, out_dir: Path, run) -> dict:
    """Answer and score benchmark ``name``; write answers.jsonl and scores.json into ``out_dir``."""
    bench = get_benchmark(name)
    settings = cfg.evaluation.benchmarks[name]
    questions = bench.load_questions(eval_root)
    log.info("%s: %d questions", name, len(questions))
    parts = load_trained(model_dir, cfg.model.torch_dtype)
    answers = generate_answers(parts, questions, template=cfg.model.conversation_template,
                               aspect=cfg.evaluation.image_aspect_ratio, batch_size=cfg.evaluation.batch_size,
                               max_new_tokens=settings.max_new_tokens, model_id=cfg.name)
    write_answers(out_dir / "answers.jsonl", answers)
    result = bench.score(eval_root, answers, out_dir=out_dir)
    result = {"benchmark": name, "title": bench.title, "paper_column": bench.paper_column,
              "num_questions": len(questions), **result}
    write_json(out_dir / "scores.json", result)
    run.log_metrics(metric_keys(name, result), on_parent=True)
    run.log_artifact(out_dir / "answers.jsonl", "predictions")
    run.log_artifact(out_dir / "scores.json")
    return result
