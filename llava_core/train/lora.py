"""LoRA for stage 2: the PEFT config built from a stage's ``lora`` settings, and its application.

``llava-core config --stage finetune`` prints :func:`lora_config`'s view, so what it shows is what
the runner applies.
"""

from __future__ import annotations


def lora_target_pattern(target_modules) -> str:
    """Only the LLM's linear layers: a bare ``["q_proj", ...]`` list would also match CLIP attention."""
    return r".*language_model.*\.(" + "|".join(target_modules) + r")$"


def lora_config(lora_cfg):
    """The ``peft.LoraConfig`` of a stage's ``lora`` settings."""
    from peft import LoraConfig

    return LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout, bias=lora_cfg.bias,
                      target_modules=lora_target_pattern(lora_cfg.target_modules), task_type="CAUSAL_LM")


def lora_view(lora_cfg) -> dict:
    """The settings of :func:`lora_config` that decide training, as plain values (for printing)."""
    peft_cfg = lora_config(lora_cfg)
    task = peft_cfg.task_type
    return {"r": peft_cfg.r, "lora_alpha": peft_cfg.lora_alpha, "lora_dropout": peft_cfg.lora_dropout,
            "bias": peft_cfg.bias, "target_modules": peft_cfg.target_modules,
            "task_type": getattr(task, "value", task)}
