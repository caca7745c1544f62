#!/usr/bin/env python
"""Run the test suite's 2-process CPU stage runs many times and count how each one ended.

A race at interpreter shutdown (a gloo group never destroyed: ``terminate called without an
active exception``, SIGABRT in one rank after its work was done) shows up once in tens of runs, so
it is measured here, not in a CI test. The three kinds are the runs of ``tests/test_train_ddp.py``
and ``tests/test_train_zero.py``, with the same data and overrides:

- ``ddp``: stage 1 on 2 processes (``pretrain.resources.gpus=2``: torchrun, gloo, DDP);
- ``zero2``: stage 2, full fine-tune, DeepSpeed ZeRO-2, one rank text-only in every step;
- ``zero3-lora``: stage 2, LoRA, DeepSpeed ZeRO-3, the same mixed batches.

Each run goes into a fresh folder; a run is *clean* when ``llava-core`` exits 0 and no rank died
(no SIGABRT, no ``terminate called`` in its log). Prints one line per run and a table::

    python scripts/stress_distributed.py                  # 20 runs of each kind (about 25 minutes)
    python scripts/stress_distributed.py --runs 5 --kinds ddp --json /tmp/stress.json

Exit status 1 if any run was not clean.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's data builders and stage runner

from train_util import (  # noqa: E402
    PRETRAIN,
    ZERO_FINETUNE,
    ZERO_TUNES,
    build_tiny_data,
    deepspeed_env,
    mixed_modality_data,
    run_stage,
    stage_env,
)

KINDS = ("ddp", "zero2", "zero3-lora")
# What torchrun and the C++ runtime print when a rank dies of SIGABRT (at exit or otherwise).
ABORT = re.compile(r"terminate called|SIGABRT|exitcode\s*:\s*-6")


def stage_run(kind: str, data, mixed, out: Path):
    """One 2-process run of ``kind`` into ``out``; the completed process."""
    if kind == "ddp":
        return run_stage("pretrain", data, out, [*PRETRAIN, "-o", "pretrain.resources.gpus=2"],
                         env=stage_env(OMP_NUM_THREADS="1"), check=False)
    zero, tune = {"zero2": ("zero2.json", "full"), "zero3-lora": ("zero3.json", "lora")}[kind]
    return run_stage("finetune", mixed, out, [*ZERO_FINETUNE, *ZERO_TUNES[tune], "-o", f"finetune.deepspeed={zero}",
                                              "-o", "finetune.resources.gpus=2"],
                     "--init", str(data.baseline), env=deepspeed_env(), check=False)


def outcome(proc) -> str:
    """``clean``, ``aborted`` (a rank died of SIGABRT, whatever the exit status) or ``failed``."""
    log = proc.stdout + proc.stderr
    if ABORT.search(log):
        return "aborted"
    return "clean" if proc.returncode == 0 else "failed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs of each kind (default 20)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--workdir", type=Path, help="where the data and runs go (default: a temporary folder)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the log of every run that was not clean")
    ap.add_argument("--json", type=Path, help="also write the counts and every run here")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if bad := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown kind(s) {bad}; expected some of {', '.join(KINDS)}")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="stress-distributed-"))
    print(f"data and runs in {work}; building the tiny data and the reference stage-1 run", flush=True)
    data = build_tiny_data(work / "train-data")
    shutil.rmtree(work / "mixed", ignore_errors=True)
    mixed = mixed_modality_data(data, work / "mixed")

    runs: list[dict] = []
    for kind in kinds:
        for i in range(args.runs):
            out = work / "runs" / f"{kind}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            proc = stage_run(kind, data, mixed, out)
            row = {"kind": kind, "run": i, "returncode": proc.returncode, "outcome": outcome(proc),
                   "seconds": round(time.perf_counter() - start, 1)}
            if row["outcome"] != "clean" and args.keep_logs:
                (work / "logs").mkdir(exist_ok=True)
                log = work / "logs" / f"{kind}-{i}.log"
                log.write_text(proc.stdout + "\n--- stderr\n" + proc.stderr)
                row["log"] = str(log)
            runs.append(row)
            print(f"{kind:>10} {i + 1:>3}/{args.runs}: {row['outcome']:<7} exit {proc.returncode:>3} "
                  f"{row['seconds']:>6.1f} s", flush=True)
            shutil.rmtree(out, ignore_errors=True)

    print(f"\n{'kind':>10} {'runs':>5} {'clean':>6} {'aborted':>8} {'failed':>7}")
    counts = {}
    for kind in kinds:
        mine = [r for r in runs if r["kind"] == kind]
        counts[kind] = {o: sum(r["outcome"] == o for r in mine) for o in ("clean", "aborted", "failed")}
        c = counts[kind]
        print(f"{kind:>10} {len(mine):>5} {c['clean']:>6} {c['aborted']:>8} {c['failed']:>7}")
    clean = sum(c["clean"] for c in counts.values())
    print(f"clean exits: {clean} of {len(runs)}")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "runs": runs}, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if clean == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
