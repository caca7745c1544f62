"""Shared by the training tests: one small tiny-world dataset and a reference stage-1 run.

The fixtures are session-scoped and cache their results under pytest's base temp folder, so the
test modules that import them build the data (about 10 s) and the reference run only once.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run

DATA = ["-o", "data.synthetic.n_pretrain=64", "-o", "data.synthetic.n_finetune=64", "-o", "data.synthetic.n_eval=8"]
# Stage 1 on 64 samples: global batch 16 = 8 per device x 2 accumulation on one process (4 steps an
# epoch), 8 steps (2 epochs), a checkpoint every 4 steps, the loss logged at every step.
PRETRAIN = [*DATA, "-o", "pretrain.max_steps=8", "-o", "pretrain.save_steps=4", "-o", "pretrain.global_batch_size=16",
            "-o", "pretrain.per_device_train_batch_size=8", "-o", "pretrain.logging_steps=1"]
CLEAN_ENV = ("LLAVA_CORE_CRASH_AFTER_STEP", "LLAVA_CORE_STEP_SLEEP", "RANK", "LOCAL_RANK", "WORLD_SIZE",
             "SLURM_JOB_ID")


@dataclass
class TinyData:
    results: Path
    data_dir: Path
    baseline: Path  # a complete, uninterrupted pretrain run with PRETRAIN


def stage_cmd(stage: str, data: TinyData, out: Path, overrides: list[str], *extra: str) -> list[str]:
    return ["llava-core", stage, "tiny", *overrides, "--results", str(data.results), "--data-dir", str(data.data_dir),
            "--out", str(out), *extra]


def stage_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(extra)
    return env


def run_stage(stage: str, data: TinyData, out: Path, overrides: list[str], *extra: str, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(stage_cmd(stage, data, out, overrides, *extra), cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env or stage_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{stage} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def projector(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "mm_projector.bin", weights_only=True)


def assert_same_tensors(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0), (k, (a[k] - b[k]).abs().max())


def data_with_records(data: TinyData, dest: Path, stage: str, records: list[dict]) -> TinyData:
    """``data`` with ``records`` as the filtered set of ``stage`` (its JSON file and its training
    index, as the filter writes them): the other parts of the data folder (images, models) are
    links into ``data``; there is no manifest (the stage then logs no dataset)."""
    from llava_core.data.index import write_training_index

    dest.mkdir(parents=True)
    for entry in data.data_dir.iterdir():
        if entry.name != "filtered":
            (dest / entry.name).symlink_to(entry.resolve())
    (dest / "filtered").mkdir()
    (dest / "filtered" / f"{stage}.json").write_text(json.dumps(records, indent=1))
    write_training_index(records, dest / "filtered" / f"{stage}.arrow")
    return TinyData(data.results, dest, data.baseline)


def deepspeed_env(**extra: str) -> dict:
    """``stage_env`` for DeepSpeed on CPU processes: the CPU accelerator, one thread a process (2 cores),
    and one folder for its JIT-compiled ops (about 90 s to build once), kept across sessions."""
    cache = os.environ.get("TORCH_EXTENSIONS_DIR") or str(Path.home() / ".cache" / "torch_extensions")
    return stage_env(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", TORCH_EXTENSIONS_DIR=cache, **extra)


@pytest.fixture(scope="session", name="tiny_data")
def tiny_data_fixture(tmp_path_factory) -> TinyData:
    base = tmp_path_factory.getbasetemp() / "train-data"
    data = TinyData(base / "results", base / "data", base / "pretrain-baseline")
    if (base / "done").exists():
        return data
    mirror = base / "mirror"
    run(["llava-core", "synthesize", "tiny", *DATA, "--out", str(mirror)])
    run(["llava-core", "download", "tiny", *DATA, "--results", str(data.results), "--data-dir", str(data.data_dir),
         "--base-url", mirror.resolve().as_uri()])
    run(["llava-core", "filter", "tiny", *DATA, "--results", str(data.results), "--data-dir", str(data.data_dir)])
    run_stage("pretrain", data, data.baseline, PRETRAIN)
    (base / "done").write_text("ok")
    return data


__all__ = ["PRETRAIN", "DATA", "TinyData", "assert_same_tensors", "data_with_records", "deepspeed_env", "metrics",
           "projector", "run_stage", "stage_cmd", "stage_env", "tiny_data_fixture"]
