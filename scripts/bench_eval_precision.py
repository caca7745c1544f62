#!/usr/bin/env python
"""Answer agreement between batch 1 and batched generation, per evaluation dtype.

The official evaluation answers one question at a time in fp16. This script answers the same
questions at batch 1 and at larger batch sizes (left padding) in each dtype and reports, per
(dtype, batch size), the share of answers identical to that dtype's batch-1 answers (and to the
fp32 batch-1 answers), with the throughput. Two model sources, either or both:

* ``--model DIR --eval-root DIR``: a trained stage-2 model folder (e.g. the tiny DAG's
  ``results/tiny/finetune/model``) on the benchmarks of an eval kit (e.g. the tiny world's
  ``results/data/tiny/eval``), each with the tiny preset's answer budget;
* ``--random N``: a random tiny LLaVA built in code (no data, no training) on N generated
  questions with a long budget, where greedy texts run long and rounding differences show::

    python scripts/bench_eval_precision.py --random 96
    python scripts/bench_eval_precision.py --model results/tiny/finetune/model \\
        --eval-root results/data/tiny/eval --batch-sizes 1,8,16,32 --json out.json

The model runs on the GPU when there is one (as ``llava-core evaluate``), else on the CPU.
Exit status 0; the figures are the output (nothing is asserted).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def _agreement(a: list[str], b: list[str]) -> float:
    return 100.0 * sum(x == y for x, y in zip(a, b, strict=True)) / max(1, len(a))


def measure(load, sets: dict[str, tuple[list, int | None]], dtypes: list[str], batch_sizes: list[int],
            log_fn=print) -> list[dict]:
    """For each dtype (``load(dtype)`` gives the parts) and batch size, answer every question set
    and compare the texts with batch 1 of the same dtype and with fp32 batch 1."""
    import torch

    from llava_core.evaluate.generate import generate_answers

    kw = dict(template="vicuna_v1", aspect="pad", model_id="bench", progress=False)
    texts: dict[tuple[str, int], list[str]] = {}
    rows = []
    order = ["fp32"] + [d for d in dtypes if d != "fp32"]  # fp32 batch 1 is the cross-dtype reference
    for dtype in order:
        parts = load(dtype)
        device = next(parts.model.parameters()).device
        first = next(iter(sets.values()))
        generate_answers(parts, first[0][:2], batch_size=2, max_new_tokens=2, **kw)  # warm-up
        for bs in sorted(set([1] + batch_sizes)):
            if dtype == "fp32" and "fp32" not in dtypes and bs != 1:
                continue
            got, seconds, names = [], 0.0, []
            for name, (questions, budget) in sets.items():
                names += [name] * len(questions)
                t0 = time.perf_counter()
                got += [r["text"] for r in generate_answers(parts, questions, batch_size=bs,
                                                            max_new_tokens=budget, **kw)]
                seconds += time.perf_counter() - t0
            texts[dtype, bs] = got
            row = {"dtype": dtype, "batch_size": bs, "questions": len(got), "device": device.type,
                   "agree_with_batch_1_pct": round(_agreement(got, texts[dtype, 1]), 2),
                   "agree_with_fp32_batch_1_pct": round(_agreement(got, texts["fp32", 1]), 2),
                   "questions_per_s": round(len(got) / seconds, 2)}
            differ = [n for n, a, b in zip(names, got, texts[dtype, 1], strict=True) if a != b]
            row["differ_from_batch_1"] = {n: differ.count(n) for n in dict.fromkeys(differ)}
            if dtype in dtypes:
                rows.append(row)
                log_fn(f"{dtype:>5} batch {bs:>3}: {row['agree_with_batch_1_pct']:6.2f}% = batch 1, "
                       f"{row['agree_with_fp32_batch_1_pct']:6.2f}% = fp32 batch 1, "
                       f"{row['questions_per_s']:7.2f} q/s ({len(got)} questions, {device.type})"
                       + (f"; differ: {row['differ_from_batch_1']}" if differ else ""))
        del parts
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    import platform

    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="stage-2 model folder (transformers layout)")
    p.add_argument("--eval-root", help="eval kit folder of the benchmarks (with --model)")
    p.add_argument("--experiment", default="tiny", help="preset giving the benchmarks and answer budgets")
    p.add_argument("--benchmarks", help="comma-separated (default: the preset's)")
    p.add_argument("--max-questions", type=int, default=0, help="first N questions per benchmark (0: all)")
    p.add_argument("--random", type=int, default=0, metavar="N", help="also a random tiny model on N questions")
    p.add_argument("--random-tokens", type=int, default=64, help="answer budget of the random model's questions")
    p.add_argument("--dtypes", default="fp32,bf16,fp16")
    p.add_argument("--batch-sizes", default="1,4,16,32")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if not args.model and not args.random:
        p.error("give --model/--eval-root, --random N, or both")
    if args.model and not args.eval_root:
        p.error("--model needs --eval-root")
    logging.disable(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = args.dtypes.split(",")
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
           f"{torch.get_num_threads()} torch threads, torch {torch.__version__}", "runs": {}}
    print(out["machine"])

    if args.model:
        from llava_core.config.compose import load_experiment
        from llava_core.evaluate.benchmarks import get_benchmark
        from llava_core.evaluate.run import load_for_eval

        cfg = load_experiment(args.experiment)
        names = args.benchmarks.split(",") if args.benchmarks else list(cfg.evaluation.benchmarks)
        sets = {}
        for name in names:
            qs = get_benchmark(name).load_questions(Path(args.eval_root))
            sets[name] = (qs[:args.max_questions] if args.max_questions else qs,
                          cfg.evaluation.benchmarks[name].max_new_tokens)
        print(f"trained model {args.model}: {sum(len(q) for q, _ in sets.values())} questions of "
              f"{len(sets)} benchmarks")
        out["runs"]["model"] = {"model": args.model, "benchmarks": names,
                                "rows": measure(lambda d: load_for_eval(Path(args.model), d), sets, dtypes,
                                                batch_sizes)}
    if args.random:
        from llava_core.evaluate.run import load_for_eval
        from llava_core.evaluate.tiny_llava import build_tiny_llava, make_questions

        with tempfile.TemporaryDirectory() as tmp:
            build_tiny_llava(Path(tmp) / "parts", save_to=Path(tmp) / "model")
            qs = make_questions(Path(tmp) / "images", args.random, max_new_tokens=args.random_tokens)
            print(f"random tiny model: {len(qs)} questions, {args.random_tokens} new tokens")
            out["runs"]["random"] = {"max_new_tokens": args.random_tokens,
                                     "rows": measure(lambda d: load_for_eval(Path(tmp) / "model", d),
                                                     {"random": (qs, None)}, dtypes, batch_sizes)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
