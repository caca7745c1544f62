"""Build transformers' ``LlavaForConditionalGeneration`` from a vision tower (CLIP or SigLIP) and a
causal LM (Llama, Qwen2, Mistral, Gemma ...: whatever ``AutoModelForCausalLM`` loads).

The LLM and vision tower are loaded once and placed into a LLaVA shell built on the meta device,
so no weights are copied; only the projector is freshly initialised (default ``nn.Linear``
init, as upstream). Projector weights move between stages in the original ``mm_projector.bin``
layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
)

from llava_core.data.images import load_image_processor
from llava_core.model.projector import (  # noqa: F401 - the projector files, re-exported for the runner
    fresh_projector,
    is_linear_projector,
    load_projector,
    save_projector,
)
from llava_core.model.training_forward import BlankImageLlavaModel

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"


@dataclass
class LlavaParts:
    model: LlavaForConditionalGeneration
    tokenizer: object
    image_processor: object

    @property
    def num_image_tokens(self) -> int:
        return int(self.model.config.image_seq_length)


def resolve_path(name: str, data_dir: str | Path | None) -> str:
    """Expand the ``{data}`` placeholder used by presets whose parts live in the data folder."""
    if "{data}" in name:
        if data_dir is None:
            raise ValueError(f"{name!r} refers to the data folder; pass --data-dir")
        return name.replace("{data}", str(data_dir))
    return name


def prepare_tokenizer(tokenizer):
    """Make sure ``<image>`` is one atomic token and a pad token exists (unk, as upstream)."""
    from llava_core.data.tokenize import make_tokenizer_for_llava

    return make_tokenizer_for_llava(tokenizer)


def torch_dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
            "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[name]


def num_image_tokens(model_cfg) -> int:
    """Image tokens per image: the patches, plus CLIP's CLS position under ``full`` (SigLIP has none)."""
    n = (model_cfg.image_size // model_cfg.patch_size) ** 2
    cls = getattr(model_cfg, "tower", "clip") == "clip"
    return n + (1 if cls and model_cfg.vision_feature_select_strategy == "full" else 0)


def vision_model_class(tower: str):
    """The transformers class of a vision tower: CLIP's or SigLIP's vision model."""
    from transformers import SiglipVisionModel

    return {"clip": CLIPVisionModel, "siglip": SiglipVisionModel}[tower]


def build_llava(model_cfg, data_dir: str | Path | None = None) -> LlavaParts:
    """LLaVA from the config's LLM and vision tower, with a fresh projector.

    The model is transformers' ``LlavaForConditionalGeneration`` whose body is a
    :class:`~llava_core.model.training_forward.BlankImageLlavaModel`: in training, a batch without
    images still runs a blank image through the vision tower and projector (ZeRO-3/ZeRO-2 ranks
    stay in step); in eval mode and in saved checkpoints it is the plain transformers model.
    """
    llm_path = resolve_path(model_cfg.llm, data_dir)
    vision_path = resolve_path(model_cfg.vision_tower, data_dir)
    dtype = torch_dtype(model_cfg.torch_dtype)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(llm_path, use_fast=True))
    tokenizer.model_max_length = model_cfg.model_max_length
    tower = getattr(model_cfg, "tower", "clip")
    image_processor = load_image_processor(vision_path, tower)  # pinned PIL backend, see llava_core.data.images
    llm = AutoModelForCausalLM.from_pretrained(llm_path, dtype=dtype)
    vision = vision_model_class(tower).from_pretrained(vision_path, dtype=dtype)
    if len(tokenizer) > llm.get_input_embeddings().weight.shape[0]:
        llm.resize_token_embeddings(len(tokenizer))

    config = LlavaConfig(
        vision_config=vision.config, text_config=llm.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        # LLaVA-1.0's linear projector is the same module with an identity activation and a frozen
        # identity second layer (see llava_core/model/projector.py), so transformers can still load it.
        projector_hidden_act="linear" if model_cfg.projector_type == "linear" else "gelu",
        vision_feature_layer=model_cfg.vision_feature_layer,
        vision_feature_select_strategy=model_cfg.vision_feature_select_strategy,
        image_seq_length=num_image_tokens(model_cfg), multimodal_projector_bias=True,
    )
    config.pad_token_id = tokenizer.pad_token_id
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
        # The body that keeps text-only training batches on the vision path (training_forward.py):
        # ranks of a ZeRO-3/ZeRO-2 run must all call the same modules. The outer class stays plain.
        model.model = BlankImageLlavaModel(config)
    model.model.vision_tower = vision
    model.model.language_model = llm.model
    model.lm_head = llm.lm_head
    model.model.multi_modal_projector = fresh_projector(model.config, model_cfg.projector_type, dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.projector_type = model_cfg.projector_type
    vision.requires_grad_(False)  # the vision tower is always frozen
    return LlavaParts(model, tokenizer, image_processor)


def freeze_identity_layer(model) -> None:
    """Keep the identity second layer of a linear projector out of training."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if is_linear_projector(base):
        base.model.multi_modal_projector.linear_2.requires_grad_(False)


def set_trainable(model: LlavaForConditionalGeneration, tune: str) -> dict[str, int]:
    """Freeze per the recipe (vision tower always frozen) and return parameter counts."""
    model.requires_grad_(False)
    model.model.multi_modal_projector.requires_grad_(True)
    freeze_identity_layer(model)
    if tune == "full":
        model.model.language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
    elif tune not in ("projector", "lora"):
        raise ValueError(f"tune={tune!r}: expected projector, full or lora")
    return parameter_counts(model)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts, overall and per LLaVA part."""
    counts = {"params/total": 0, "params/trainable": 0}
    parts = {"vision_tower": "model.vision_tower.", "projector": "model.multi_modal_projector.",
             "language_model": "model.language_model.", "lm_head": "lm_head."}
    for name, p in model.named_parameters():
        n = p.numel()
        counts["params/total"] += n
        if p.requires_grad:
            counts["params/trainable"] += n
        for part, prefix in parts.items():
            if prefix in name:
                key = f"params/{part}/trainable" if p.requires_grad else f"params/{part}/frozen"
                counts[key] = counts.get(key, 0) + n
    return counts
