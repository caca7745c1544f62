"""``scripts/gpu_check.py`` on the CPU with tiny shapes: every check of the real-path GPU script runs
(so the script a lent GPU will run does not rot), and each reports what it must."""

from __future__ import annotations

import json
import sys

from conftest import free_port, run
from train_util import deepspeed_env


def test_cpu_smoke_runs_every_check(tmp_path):
    env = deepspeed_env(MASTER_PORT=str(free_port()))
    proc = run([sys.executable, "scripts/gpu_check.py", "--cpu", "--tiny", "--questions", "3", "--eval-batch-size", "3", "--steps", "4",
                "--warmup-steps", "1", "--out", str(tmp_path)], timeout=900, env=env)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("GPU_CHECK "))
    result = json.loads(line.removeprefix("GPU_CHECK "))
    assert result["ok"] and result["checks"] == ["token_streams", "precision", "text_only_zero3", "throughput"]
    streams = result["token_streams"]
    assert streams["legacy"]["checked"] == streams["nonlegacy"]["checked"] > 10
    assert streams["legacy"]["mismatched"] == streams["nonlegacy"]["mismatched"] == []
    text_only = result["text_only_zero3"]
    assert text_only["steps"] == 4 and text_only["blank_image_batches"] > 0 and text_only["loss_bit_identical"]
    precision = result["precision"]
    assert precision["questions"] == 3
    assert {k for k in precision if "/" in k} == {f"{d}/bs{b}" for d in ("fp32", "bf16", "fp16") for b in (1, 3)}
    assert precision["fp32/bs3"]["agree_with_own_bs1"] == 1.0
    throughput = result["throughput"]
    assert throughput["deepspeed"] == "zero3.json" and throughput["tokens_per_second"] > 0
