"""Resuming a training stage: after a hard kill, and after a preemption signal (exit 75).

Both reruns must land exactly where an uninterrupted run with the same seed lands: same loss at
every step and same weights. That needs the data order to be reproduced on resume (the Trainer
skips the batches already seen in the current epoch; the samplers depend only on seed and epoch)
and the checkpoint's weights to be restored (see ``LlavaTrainer._load_from_checkpoint``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT
from safetensors.torch import load_file
from train_util import (
    DATA,
    PRETRAIN,
    assert_same_tensors,
    metrics,
    projector,
    run_stage,
    stage_cmd,
    stage_env,
    tiny_data_fixture,  # noqa: F401 (the fixture tiny_data)
)

from llava_core.exit_codes import PREEMPTED
from llava_core.train.callbacks import PreemptionCallback
from llava_core.train.runner import finished_checkpoint, last_complete_checkpoint

# Stage 2 with the modality-grouped sampler: 64 samples (62 with an image), global batch 16 = 8 x 2
# accumulation, so 4 steps an epoch; checkpoints at 3, 6, 9; 10 steps cross an epoch boundary.
FINETUNE = [*DATA, "-o", "finetune.max_steps=10", "-o", "finetune.save_steps=3", "-o", "finetune.global_batch_size=16",
            "-o", "finetune.per_device_train_batch_size=8", "-o", "finetune.logging_steps=1"]


def model_tensors(out: Path) -> dict:
    tensors = {}
    for f in sorted((out / "model").glob("*.safetensors")):
        tensors.update(load_file(f))
    assert tensors, f"no weights in {out / 'model'}"
    return tensors


def test_killed_stage2_resumes_mid_epoch_to_the_same_loss_and_weights(tiny_data, tmp_path):
    init = tiny_data.baseline
    a, b = tmp_path / "a", tmp_path / "b"
    run_stage("finetune", tiny_data, a, FINETUNE, "--init", str(init))
    # Killed hard (no cleanup, like kill -9) at the end of step 7: checkpoint-6 is the newest.
    crashed = run_stage("finetune", tiny_data, b, FINETUNE, "--init", str(init),
                        env=stage_env(LLAVA_CORE_CRASH_AFTER_STEP="7"), check=False)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    assert not (b / "metrics.json").exists() and not (b / "model").exists()
    assert Path(last_complete_checkpoint(b / "checkpoints")).name == "checkpoint-6"
    rerun = run_stage("finetune", tiny_data, b, FINETUNE, "--init", str(init))
    assert "resuming finetune from" in rerun.stderr
    ma, mb = metrics(a), metrics(b)
    assert ma["train/resumed"] == 0 and mb["train/resumed"] == 1
    assert mb["train/steps"] == ma["train/steps"] == 10
    assert len(mb["loss_history"]) == len(ma["loss_history"]) == 10
    assert mb["loss_history"] == pytest.approx(ma["loss_history"], abs=1e-5)
    assert_same_tensors(model_tensors(a), model_tensors(b), atol=1e-5)
    # Once the outputs are written the checkpoints have served: none is left to resume.
    assert not list((a / "checkpoints").glob("checkpoint-*")) and not list((b / "checkpoints").glob("checkpoint-*"))


def test_rerun_of_a_finished_stage_trains_afresh(tiny_data, tmp_path):
    """Killed after its last step was checkpointed but before its outputs were written (or rerun
    by --forcerun while a finished checkpoint is there): the rerun trains every step again instead
    of resuming into a 0-step run whose metrics would replace the real ones."""
    out = tmp_path / "ft"
    args = [*FINETUNE, "-o", "finetune.save_steps=5", "--init", str(tiny_data.baseline)]
    crashed = run_stage("finetune", tiny_data, out, args, env=stage_env(LLAVA_CORE_CRASH_AT_TRAIN_END="1"),
                        check=False)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    assert Path(last_complete_checkpoint(out / "checkpoints")).name == "checkpoint-10"
    assert finished_checkpoint(out / "checkpoints" / "checkpoint-10")
    rerun = run_stage("finetune", tiny_data, out, args)
    assert "ends a finished run; training afresh" in rerun.stderr and "resuming finetune" not in rerun.stderr
    m = metrics(out)
    assert m["train/resumed"] == 0 and m["train/steps"] == 10 and len(m["loss_history"]) == 10
    assert m["train/samples_per_second"] > 0
    assert not list((out / "checkpoints").glob("checkpoint-*"))


def test_finished_checkpoint_reads_the_trainer_state(tmp_path):
    for step, max_steps, done in ((10, 10, True), (9, 10, False), (0, 0, False)):
        d = tmp_path / f"checkpoint-{step}-{max_steps}"
        d.mkdir()
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}))
        assert finished_checkpoint(d) is done


def test_sigusr1_checkpoints_exits_75_and_the_rerun_resumes(tiny_data, tmp_path):
    out = tmp_path / "preempted"
    # Half a second a step leaves room to signal after the first checkpoint (step 4) and before the end.
    proc = subprocess.Popen(stage_cmd("pretrain", tiny_data, out, PRETRAIN), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=stage_env(LLAVA_CORE_STEP_SLEEP="0.5"))
    deadline = time.time() + 300
    while not (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-4000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == PREEMPTED == 75, log[-4000:]
    marker = json.loads((out / "preempted.json").read_text())
    assert marker["signal"] == "SIGUSR1" and 5 <= marker["step"] < 8, marker
    assert Path(last_complete_checkpoint(out / "checkpoints")).name == f"checkpoint-{marker['step']}"
    assert not (out / "mm_projector.bin").exists() and not (out / "metrics.json").exists()

    run_stage("pretrain", tiny_data, out, PRETRAIN)
    m, ref = metrics(out), metrics(tiny_data.baseline)
    assert m["train/resumed"] == 1 and m["train/steps"] == 8
    assert not (out / "preempted.json").exists()
    assert m["loss_history"] == pytest.approx(ref["loss_history"], abs=1e-5)
    assert_same_tensors(projector(out), projector(tiny_data.baseline))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_callback_stops_at_the_next_step_boundary(sig):
    from types import SimpleNamespace as NS

    from transformers import TrainerControl

    cb = PreemptionCallback().install()
    try:
        args, control = NS(world_size=1), TrainerControl()
        cb.on_step_end(args, NS(global_step=3), control)
        assert not control.should_save and not control.should_training_stop
        signal.raise_signal(sig)
        cb.on_step_end(args, NS(global_step=4), control)
        assert control.should_save and control.should_training_stop
        assert cb.received == sig.name and cb.stopped_at == 4
    finally:
        cb.uninstall()
    assert signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler) or callable(signal.getsignal(sig))


def test_incomplete_checkpoints_are_skipped(tmp_path):
    ck = tmp_path / "checkpoints"
    assert last_complete_checkpoint(ck) is None
    for step, complete in ((4, True), (8, True), (12, False)):
        d = ck / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if complete:
            (d / "trainer_state.json").write_text("{}")
    (ck / "checkpoint-x").mkdir()
    assert Path(last_complete_checkpoint(ck)).name == "checkpoint-8"
