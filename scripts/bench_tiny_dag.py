#!/usr/bin/env python
"""Time the whole tiny DAG (the README's quick start) from an empty results folder.

Runs ``snakemake --cores N`` on the tiny default into a fresh folder and reports the wall time,
each job's run time (Snakemake's benchmark files), the chain of stages the DAG waits on, and every
benchmark's score beside its chance level. Exit status 1 if the wall time is over ``--budget``
seconds (default 300: the README promises the tiny run in under five minutes on two cores)::

    python scripts/bench_tiny_dag.py                        # 2 cores, budget 300 s
    python scripts/bench_tiny_dag.py --cores 4 --json /tmp/tiny-dag.json --keep --workdir /tmp/td
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The DAG's stages in order: each waits for the one before (the benchmarks run side by side).
CHAIN = ("synthesize", "download", "filter", "pretrain", "finetune")


def chain_job(times: dict[str, float], kind: str) -> str:
    """The benchmark-file name of the tiny DAG's ``kind`` job (``data/tiny/filter-<id>``,
    ``stages/pretrain/<id>``: the layout of llava_core/plan/layout.py)."""
    for name in times:
        if name in (f"data/tiny/{kind}", f"stages/{kind}") or name.startswith((f"data/tiny/{kind}-",
                                                                               f"stages/{kind}/")):
            return name
    return kind


def job_times(results: Path) -> dict[str, float]:
    """Seconds per job from Snakemake's benchmark TSVs (``results/benchmarks/**.tsv``)."""
    out = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv, encoding="utf-8") as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        out[tsv.relative_to(results / "benchmarks").with_suffix("").as_posix()] = float(row["s"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds the whole DAG may take")
    ap.add_argument("--workdir", type=Path, help="results folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the results folder")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    results = args.workdir or Path(tempfile.mkdtemp(prefix="tiny-dag-"))
    if results.exists():
        shutil.rmtree(results)
    cmd = ["snakemake", "--cores", str(args.cores), "--config", f"results={results}"]
    print(f"$ {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        return 1

    times = job_times(results)
    evals = {k: v for k, v in times.items() if k.startswith("stages/eval/")}
    chain = sum(times.get(chain_job(times, k), 0.0) for k in CHAIN)
    rows = list(csv.DictReader(open(results / "tiny" / "report.csv", encoding="utf-8")))
    below = [r["title"] for r in rows if not float(r["above_chance"] or "nan") > 0]
    figures = {"wall_seconds": round(wall, 1), "cores": args.cores, "budget_seconds": args.budget,
               "jobs_seconds": {k: round(v, 1) for k, v in times.items()},
               "chain_seconds": round(chain, 1), "evaluations_seconds_total": round(sum(evals.values()), 1),
               "scheduling_and_startup_seconds": round(wall - chain - sum(evals.values()) / args.cores, 1),
               "scores": {r["benchmark"]: {"score": float(r["ours"]), "chance": float(r["chance"])} for r in rows},
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "platform": platform.platform()}}
    width = max(map(len, times))
    for k, v in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<{width}}  {v:6.1f} s")
    print(f"chain {' -> '.join(CHAIN)}: {chain:.1f} s; "
          f"{len(evals)} evaluations: {sum(evals.values()):.1f} s of job time on {args.cores} cores")
    for r in rows:
        print(f"  {r['title']:<28} chance {float(r['chance']):7.1f}   ours {float(r['ours']):7.1f}")
    print(f"wall time {wall:.1f} s (budget {args.budget:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not args.keep and not args.workdir:
        shutil.rmtree(results, ignore_errors=True)
    ok = wall <= args.budget
    if below:
        print(f"not above chance: {', '.join(below)} (see docs/evaluation.md)")
    if wall > args.budget:
        print(f"over budget: {wall:.1f} s > {args.budget:.0f} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
