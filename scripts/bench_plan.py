#!/usr/bin/env python
"""Time the dry run of a 24-variant sweep against a single experiment's.

Planning every variant happens in one process (``llava-core plan``, code digests shared, each
preset composed once); the target is a 24-variant dry run within 2x of one experiment's::

    python scripts/bench_plan.py                       # tiny, 3 repeats each, prints both and the ratio
    python scripts/bench_plan.py --experiments llava-v1.5-7b --repeats 5 --json /tmp/plan.json

The sweep: finetune.learning_rate (3) x finetune.seed (4) x finetune.warmup_ratio (2) = 24 variants
sharing one stage 1 (24 stage 2s, 24 x 12 evaluations). Exit status 1 above ``--max-ratio`` (2).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = "finetune.learning_rate=1e-3,2e-3,3e-3 finetune.seed=1,2,3,4 finetune.warmup_ratio=0.03,0.1"


def dry_run(results: Path, experiments: str, sweep: str | None) -> tuple[float, int]:
    """Seconds of ``snakemake -n`` and the number of jobs it plans."""
    cmd = ["snakemake", "-n", "--cores", "1", "--config", f"results={results}", f"experiments={experiments}"]
    if sweep:
        cmd.append(f"sweep={sweep}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)$", proc.stdout, re.M)
    return seconds, int(total.group(1)) if total else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", default="tiny")
    ap.add_argument("--sweep", default=SWEEP)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-ratio", type=float, default=2.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        for label, sweep in (("single", None), ("sweep", args.sweep)):
            times, jobs = [], 0
            for _ in range(args.repeats):
                seconds, jobs = dry_run(Path(tmp) / label, args.experiments, sweep)
                times.append(seconds)
            figures[label] = {"median_s": statistics.median(times), "runs_s": [round(t, 2) for t in times],
                              "jobs": jobs}
            print(f"{label:>6}: {statistics.median(times):.2f} s (median of {args.repeats}), {jobs} jobs planned",
                  flush=True)
    ratio = figures["sweep"]["median_s"] / figures["single"]["median_s"]
    figures["ratio"] = ratio
    print(f"24-variant dry run / single dry run: {ratio:.2f} (target <= {args.max_ratio})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
