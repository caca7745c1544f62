"""Turn a stage config into the exact HF ``TrainingArguments`` values that will be used.

The global batch of the recipe (256 for stage 1, 128 for stage 2) is kept on any number of GPUs
by deriving gradient accumulation: per-device batch x world size x accumulation = global batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llava_core.config.compose import ConfigError, config_dir


def accumulation_steps(global_batch: int, per_device: int, world_size: int) -> int:
    """Gradient accumulation that keeps the global batch; error if it cannot be kept exactly."""
    per_step = per_device * world_size
    if global_batch % per_step:
        raise ConfigError(f"global batch {global_batch} is not a multiple of per-device batch {per_device} x "
                          f"{world_size} processes; change per_device_train_batch_size")
    return global_batch // per_step


def deepspeed_config(name: str | None) -> dict | None:
    """The DeepSpeed JSON shipped in config/deepspeed/, or None.

    A file without ``gradient_clipping`` gets ``"auto"`` (the Trainer fills in ``max_grad_norm``):
    DeepSpeed clips at 1.0 when the key is absent since 0.19 (its PR #8068; the default was 0
    before), while the official zero2.json/zero3.json omit it and so ran unclipped.
    """
    if name is None:
        return None
    cfg = json.loads((config_dir() / "deepspeed" / name).read_text())
    cfg.setdefault("gradient_clipping", "auto")
    return cfg


def training_arguments(stage_cfg, *, world_size: int, output_dir: str | Path, seed: int,
                       on_gpu: bool) -> dict[str, Any]:
    """Keyword arguments for ``transformers.TrainingArguments`` (names exactly as HF spells them)."""
    st = stage_cfg
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": st.per_device_train_batch_size,
        "gradient_accumulation_steps": accumulation_steps(st.global_batch_size, st.per_device_train_batch_size,
                                                          world_size),
        "learning_rate": st.learning_rate,
        "num_train_epochs": st.num_train_epochs,
        "max_steps": st.max_steps,
        # transformers 5 folds warmup_ratio into warmup_steps: a float in [0, 1) is a ratio.
        "warmup_steps": st.warmup_ratio,
        "lr_scheduler_type": st.lr_scheduler_type,
        "weight_decay": st.weight_decay,
        "max_grad_norm": st.max_grad_norm,
        # global_token counts the supervised tokens over all ranks; rank_mean counts none (LlavaTrainer).
        "average_tokens_across_devices": st.loss_weighting == "global_token",
        "optim": st.optim,
        "bf16": bool(st.bf16 and on_gpu),
        "tf32": bool(st.tf32) if on_gpu else None,
        "gradient_checkpointing": st.gradient_checkpointing,
        "deepspeed": deepspeed_config(st.deepspeed),
        "logging_steps": st.logging_steps,
        "save_strategy": "steps",
        "save_steps": st.save_steps,
        "save_total_limit": st.save_total_limit,
        "dataloader_num_workers": st.dataloader_num_workers,
        "seed": seed,
        "report_to": "none",
        "remove_unused_columns": False,
        "eval_strategy": "no",
        "use_cpu": not on_gpu,
        # NCCL needs GPUs; multi-process CPU runs (tests, torchrun --nproc_per_node N) use gloo.
        # Only when distributed: a backend set on one process makes accelerate expect a group.
        "ddp_backend": "gloo" if world_size > 1 and not on_gpu else None,
    }
