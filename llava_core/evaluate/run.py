"""Evaluate one benchmark: load questions, generate answers, judge (LLaVA-Bench, MM-Vet), score, record.

A benchmark runs as one job (:func:`evaluate_benchmark`), or, with ``num_shards`` N > 1, as N
generation jobs (:func:`answer_shard`, the official ``--num-chunks``/``--chunk-idx`` split) and
one job that merges their answers in question order and scores them
(``evaluate_benchmark(..., merge_shards_n=N)``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from llava_core.data.formats import read_answers, write_answers
from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.generate import answer_questions, shard_file, shard_range
from llava_core.io import FormatError, write_json

log = logging.getLogger(__name__)


def metric_keys(benchmark: str, result: dict) -> dict[str, float]:
    """The stable MLflow keys of a score: ``eval/<benchmark>/score`` and ``eval/<benchmark>/<metric>``."""
    out = {f"eval/{benchmark}/score": result["score"]}
    out.update({f"eval/{benchmark}/{k}": v for k, v in result["metrics"].items()})
    return out


def load_for_eval(model_dir: Path, dtype: str, quantization: str = "none"):
    """The stage-2 model in ``dtype`` (``evaluation.dtype``), on the GPU when there is one.

    As the official ``load_pretrained_model`` (fp16 weights on the GPU). ``dtype`` is honoured on a
    CPU-only machine too rather than silently swapped for fp32, so the recorded precision is the
    one that answered (fp16/bf16 matmuls on a CPU without native support are ~3x slower than
    fp32: docs/evaluation.md).
    """
    import torch

    from llava_core.model.checkpoints import load_llava

    parts = load_llava(model_dir, dtype, quantization)
    if torch.cuda.is_available() and quantization == "none":  # a quantised model is placed as it loads
        parts.model.to("cuda")
    elif dtype != "fp32":
        log.warning("no GPU: evaluating on the CPU in %s (slow without native %s support; "
                    "-o evaluation.dtype=fp32 is faster there, with other answers)", dtype, dtype)
    return parts


def _answer(cfg, name: str, questions, *, model_dir: Path, answers_path: Path) -> list[dict]:
    settings = cfg.evaluation.benchmarks[name]
    parts = load_for_eval(model_dir, cfg.evaluation.dtype, cfg.evaluation.quantization)
    return answer_questions(parts, questions, answers_path, model_path=model_dir,
                            template=cfg.model.conversation_template, aspect=cfg.evaluation.image_aspect_ratio,
                            batch_size=cfg.evaluation.batch_size, max_new_tokens=settings.max_new_tokens,
                            model_id=cfg.name, dtype=str(cfg.evaluation.dtype),
                            quantization=cfg.evaluation.quantization)


def answer_shard(cfg, name: str, *, model_dir: Path, eval_root: Path, out_dir: Path, shard: int,
                 num_shards: int) -> Path:
    """Answer the ``shard``-th contiguous chunk of ``ceil(len / num_shards)`` questions into
    ``<out_dir>/shards/<shard>_of_<num_shards>.jsonl`` (resumable like a whole run)."""
    questions = get_benchmark(name).load_questions(eval_root)
    r = shard_range(len(questions), shard, num_shards)
    path = shard_file(out_dir, shard, num_shards)
    log.info("%s shard %d/%d: questions %d..%d of %d", name, shard, num_shards, r.start, r.stop, len(questions))
    if len(r) == 0:
        write_answers(path, [])
    else:
        _answer(cfg, name, questions[r.start:r.stop], model_dir=model_dir, answers_path=path)
    return path


def merge_shards(questions, out_dir: Path, num_shards: int) -> list[dict]:
    """Concatenate the shard files in order (= question order) and check they cover every question."""
    rows: list[dict] = []
    for k in range(num_shards):
        path = shard_file(out_dir, k, num_shards)
        if not path.exists():
            raise FormatError(path, None, "shard answers missing", f"run `llava-core evaluate ... --shard {k}/"
                              f"{num_shards}` first")
        part = read_answers(path) if path.stat().st_size else []
        r = shard_range(len(questions), k, num_shards)
        if [str(a["question_id"]) for a in part] != [str(q.question_id) for q in questions[r.start:r.stop]]:
            raise FormatError(path, None, "shard answers do not match this shard's questions",
                              "the question file or the shard count changed: rerun the shard")
        rows += part
    return rows


def evaluate_benchmark(cfg, name: str, *, model_dir: Path, eval_root: Path, out_dir: Path, run,
                       merge_shards_n: int | None = None) -> dict:
    """Answer (or merge ``merge_shards_n`` shards), judge if needed, and score benchmark ``name``;
    writes answers.jsonl and scores.json into ``out_dir``."""
    bench = get_benchmark(name)
    questions = bench.load_questions(eval_root)
    log.info("%s: %d questions", name, len(questions))
    answers_path = Path(out_dir) / "answers.jsonl"
    if merge_shards_n:
        answers = merge_shards(questions, out_dir, merge_shards_n)
        write_answers(answers_path, answers)
    else:
        answers = _answer(cfg, name, questions, model_dir=model_dir, answers_path=answers_path)
    return score_answers(cfg, name, answers, eval_root=eval_root, out_dir=out_dir, run=run,
                         num_questions=len(questions))


def score_answers(cfg, name: str, answers: list[dict], *, eval_root: Path, out_dir: Path, run,
                  num_questions: int, judge_backend=None) -> dict:
    """Judge (for LLaVA-Bench and MM-Vet) and score ``answers``; write scores.json and log to ``run``."""
    bench = get_benchmark(name)
    reviews, judge_info = None, None
    if bench.judged and cfg.evaluation.judge.kind != "none":  # only judged benchmarks import the judge
        reviews, judge_info, params = bench.judge_answers(cfg.evaluation.judge, eval_root, answers, out_dir,
                                                          model_name=cfg.name, backend=judge_backend)
        run.log_params(params)
    score = bench.score(eval_root, answers, out_dir=out_dir, reviews=reviews)
    result = {"benchmark": name, "title": bench.title, "paper_column": bench.paper_column,
              "num_questions": num_questions, "chance": bench.chance_level(eval_root), **score.to_dict()}
    if cfg.evaluation.quantization != "none":  # the report marks these scores
        result["quantization"] = cfg.evaluation.quantization
    if judge_info:
        result["judge"] = judge_info
    write_json(Path(out_dir) / "scores.json", result)
    run.log_metrics(metric_keys(name, result), on_parent=True)
    run.log_artifact(Path(out_dir) / "answers.jsonl", "predictions")
    for path in reviews or []:
        run.log_artifact(path, "reviews")
    run.log_artifact(Path(out_dir) / "scores.json")
    return result
