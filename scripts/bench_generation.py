#!/usr/bin/env python
"""Generation throughput on the tiny model: questions/second at batch 1 and at the default batch size.

Builds a random tiny LLaVA in code (no data, no training), answers the same questions at both
batch sizes, checks the answers are identical, and prints both rates and the speed-up::

    python scripts/bench_generation.py            # 64 questions, the tiny preset's batch size
    python scripts/bench_generation.py --questions 128 --batch-size 16 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from llava_core.config.compose import load_experiment
    from llava_core.evaluate.generate import generate_answers
    from llava_core.evaluate.tiny_llava import build_tiny_llava, make_questions

    cfg = load_experiment("tiny")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=cfg.evaluation.batch_size,
                   help=f"the batched run's size (default: the tiny preset's, {cfg.evaluation.batch_size})")
    p.add_argument("--max-new-tokens", type=int, default=16, help="answer budget (the tiny preset's is 16)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        parts = build_tiny_llava(Path(tmp) / "parts")
        questions = make_questions(Path(tmp) / "images", args.questions, max_new_tokens=args.max_new_tokens)
        kw = dict(template="vicuna_v1", aspect="pad", max_new_tokens=None, model_id="bench", progress=False)
        generate_answers(parts, questions[:2], batch_size=2, **kw)  # warm-up (lazy init, allocator)
        rates, texts = {}, {}
        for bs in (1, args.batch_size):
            t0 = time.perf_counter()
            rows = generate_answers(parts, questions, batch_size=bs, **kw)
            rates[bs] = len(questions) / (time.perf_counter() - t0)
            texts[bs] = [r["text"] for r in rows]
    identical = texts[1] == texts[args.batch_size]
    speedup = rates[args.batch_size] / rates[1]
    out = {"questions": args.questions, "max_new_tokens": args.max_new_tokens, "device": "cpu",
           "threads": torch.get_num_threads(), "batch_1_qps": round(rates[1], 2), "batch_size": args.batch_size,
           f"batch_{args.batch_size}_qps": round(rates[args.batch_size], 2), "speedup": round(speedup, 2),
           "identical_answers": identical}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.questions} questions, max_new_tokens {args.max_new_tokens}, CPU, {out['threads']} threads")
        print(f"batch 1:  {rates[1]:8.2f} questions/s")
        print(f"batch {args.batch_size}: {rates[args.batch_size]:8.2f} questions/s")
        print(f"speed-up: {speedup:.2f}x (target >= 4x); answers identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
