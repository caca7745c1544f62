"""Two CPU processes (gloo) train stage 1 exactly like one process with the same global batch.

The stage asks for 2 "GPUs" (``pretrain.resources.gpus=2``), so ``llava-core pretrain`` re-runs
itself under ``torchrun --standalone --nproc_per_node 2`` (launch.py); each worker then derives
gradient accumulation 1 from WORLD_SIZE=2 where the one-process reference uses 2, for the same
global batch of 16. Same seed, same samples per optimizer step: same losses and same projector.
"""

from __future__ import annotations

import pytest
from train_util import (
    PRETRAIN,
    assert_same_tensors,
    metrics,
    projector,
    run_stage,
    tiny_data_fixture,  # noqa: F401 (the fixture tiny_data)
)


def test_two_processes_match_one_process_with_the_same_global_batch(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    proc = run_stage("pretrain", tiny_data, out, [*PRETRAIN, "-o", "pretrain.resources.gpus=2"])
    assert "torchrun --standalone --nnodes 1 --nproc_per_node 2" in proc.stderr
    ddp, ref = metrics(out), metrics(tiny_data.baseline)
    assert (ddp["train/world_size"], ddp["train/gradient_accumulation_steps"]) == (2, 1)
    assert (ref["train/world_size"], ref["train/gradient_accumulation_steps"]) == (1, 2)
    assert ddp["train/global_batch_size"] == ref["train/global_batch_size"] == 16
    assert ddp["loss_history"][0] == pytest.approx(ref["loss_history"][0], abs=1e-4)
    # Stronger than the first step: 8 steps over 2 epochs stay in step too.
    assert ddp["loss_history"] == pytest.approx(ref["loss_history"], abs=1e-4)
    assert_same_tensors(projector(out), projector(tiny_data.baseline), atol=1e-5)
    # Rank 0 alone reports: one stage config, one metrics file, no second MLflow run.
    assert (out / "config.yaml").exists()
