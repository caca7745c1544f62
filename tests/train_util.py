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


def build_tiny_data(base: Path, extra: list[str] | tuple[str, ...] = ()) -> TinyData:
    """The small tiny-world dataset and its reference stage-1 run under ``base`` (built once; a
    ``done`` file marks a complete build); ``extra`` overrides go to every step (another LLM family)."""
    data = TinyData(base / "results", base / "data", base / "pretrain-baseline")
    if (base / "done").exists():
        return data
    mirror = base / "mirror"
    options = [*DATA, *extra]
    run(["llava-core", "synthesize", "tiny", *options, "--out", str(mirror)])
    run(["llava-core", "download", "tiny", *options, "--results", str(data.results), "--data-dir", str(data.data_dir),
         "--base-url", mirror.resolve().as_uri()])
    run(["llava-core", "filter", "tiny", *options, "--results", str(data.results), "--data-dir", str(data.data_dir)])
    run_stage("pretrain", data, data.baseline, [*PRETRAIN, *extra])
    (base / "done").write_text("ok")
    return data


@pytest.fixture(scope="session", name="tiny_data")
def tiny_data_fixture(tmp_path_factory) -> TinyData:
    return build_tiny_data(tmp_path_factory.getbasetemp() / "train-data")


# ----------------------------------------------------------------------------- ZeRO with mixed modalities
ZERO_STEPS = 3
#: The tiny world on a Qwen2 LLM (q/k/v biases, its own module names) instead of Llama.
QWEN2 = ["-o", "data.synthetic.llm.family=qwen2"]
# Plain SGD: the weight change is linear in the gradient, so the weights can be compared tightly.
# (Adam's first steps move each weight by about lr x sign(gradient), which turns rounding-level
# differences of near-zero gradients, e.g. from another summation order, into differences of up to lr.)
ZERO_FINETUNE = [*DATA, "-o", f"finetune.max_steps={ZERO_STEPS}", "-o", "finetune.warmup_ratio=0",
                 "-o", "finetune.optim=sgd", "-o", "finetune.learning_rate=0.1",
                 "-o", "finetune.global_batch_size=16", "-o", "finetune.per_device_train_batch_size=8",
                 "-o", "finetune.group_by_modality_length=true", "-o", "finetune.logging_steps=1",
                 "-o", f"finetune.save_steps={ZERO_STEPS}"]
# Full fine-tuning, and LoRA as the LoRA recipe runs it (ZeRO-3, gradient checkpointing, its own projector
# learning rate); LoRA dropout off, since dropout masks are drawn differently by 1 and 2 processes.
ZERO_TUNES = {"full": [],
              "lora": ["-o", "finetune.tune=lora", "-o", "finetune.lora.r=4", "-o", "finetune.lora.alpha=8",
                       "-o", "finetune.lora.dropout=0", "-o", "finetune.learning_rate=0.5",
                       "-o", "finetune.projector_lr=0.1", "-o", "finetune.gradient_checkpointing=true"]}


def words(rec: dict) -> int:
    """The sampler's length of a record: whitespace-separated words over all turns (spec 2.4)."""
    return sum(len(turn["value"].split()) for turn in rec["conversations"])


def without_image(rec: dict) -> dict:
    conv = [dict(turn) for turn in rec["conversations"]]
    conv[0]["value"] = conv[0]["value"].replace("<image>", "").strip()
    return {"id": f"{rec['id']}-text", "conversations": conv}


def mixed_modality_data(data: TinyData, dest: Path) -> TinyData:
    """``data`` with a stage-2 set of 8 short image records, then the 8 longest image records turned
    into text-only ones (see test_train_zero: every step gives one rank text only)."""
    from llava_core.data.formats import read_llava_records

    records = read_llava_records(data.data_dir / "filtered" / "finetune.json")
    images = sorted((r for r in records if "image" in r), key=words)
    chosen = images[:8] + [without_image(r) for r in images[-8:]]
    return data_with_records(data, dest, "finetune", chosen)


__all__ = ["PRETRAIN", "DATA", "QWEN2", "ZERO_FINETUNE", "ZERO_STEPS", "ZERO_TUNES", "TinyData", "assert_same_tensors",
           "build_tiny_data", "data_with_records", "deepspeed_env", "metrics", "mixed_modality_data", "projector",
           "run_stage", "stage_cmd", "stage_env", "tiny_data_fixture", "without_image", "words"]
