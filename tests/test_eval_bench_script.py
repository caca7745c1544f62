"""scripts/bench_generation.py runs and finds batched answers identical to batch-1 answers."""

from __future__ import annotations

import json

from conftest import run


def test_bench_generation_script_small():
    out = run(["python", "scripts/bench_generation.py", "--questions", "12", "--batch-size", "6",
               "--max-new-tokens", "4", "--json"], timeout=600).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["identical_answers"] is True
    assert res["batch_1_qps"] > 0 and res["batch_6_qps"] > 0 and res["speedup"] > 0
