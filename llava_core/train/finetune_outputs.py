"""Stage 2's output: a transformers LLaVA checkpoint (a LoRA run's adapter merged in first).

Its own module so that only stage 2 (and evaluation, which loads the checkpoint) depends on the
checkpoint writer: editing ``model/checkpoints.py`` reruns stage 2 and the evaluations, not stage 1.
"""

from __future__ import annotations

from pathlib import Path

from llava_core.io import apply_umask
from llava_core.model.checkpoints import save_llava, save_non_lora_trainables
from llava_core.plan.layout import outputs


def save_stage2(model, parts, out_dir: Path) -> None:
    """Write ``<out>/model`` (and, for a LoRA (PEFT) model, ``<out>/adapter`` with the projector PEFT omits)."""
    if hasattr(model, "peft_config") and hasattr(model, "merge_and_unload"):
        model.save_pretrained(out_dir / "adapter")
        save_non_lora_trainables(model, out_dir / "adapter")  # the projector, which PEFT's files omit
        apply_umask(out_dir / "adapter")
        model = model.merge_and_unload()
    save_llava(model, parts.tokenizer, parts.image_processor, outputs("finetune", str(out_dir))["model"],
               vision_feature_select_strategy=model.config.vision_feature_select_strategy)
