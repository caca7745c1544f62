"""A LLaVA model written in the layouts its checkpoints are released in, for the tiny world's
stand-ins of the released weights (issue 13): ``original`` (``liuhaotian/llava-v1.5-*``) and
``llava-hf`` (``llava-hf/llava-1.5-*-hf``). Their import is :mod:`llava_core.model.checkpoints`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llava_core.io import atomic_dir
from llava_core.model.build import LlavaParts

_PROJECTOR = {"model.multi_modal_projector.linear_1.": "model.mm_projector.0.",
              "model.multi_modal_projector.linear_2.": "model.mm_projector.2."}


def _original_key(key: str) -> str | None:
    """In-memory ``LlavaForConditionalGeneration`` name -> original ``LlavaLlamaForCausalLM`` name
    (None: the CLIP tower, which the released v1.5 checkpoints leave out)."""
    if key.startswith("model.vision_tower."):
        return None
    if key == "lm_head.weight":
        return key
    for new, old in _PROJECTOR.items():
        if key.startswith(new):
            return old + key[len(new):]
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    raise ValueError(f"no original name for {key!r}")


def original_config(text_config: dict, *, vision_tower: str, vision_hidden_size: int, feature_layer: int = -2,
                    strategy: str = "default") -> dict:
    """The ``config.json`` of an original LLaVA-1.5 release: the Llama config plus the ``mm_*`` keys
    its training writes (spec 7.1)."""
    return {**text_config, "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
            "mm_vision_tower": vision_tower, "mm_hidden_size": vision_hidden_size, "mm_projector_type": "mlp2x_gelu",
            "mm_vision_select_layer": feature_layer,
            "mm_vision_select_feature": "patch" if strategy == "default" else "cls_patch", "image_aspect_ratio": "pad",
            "use_mm_proj": True, "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
            "tune_mm_mlp_adapter": False, "freeze_mm_mlp_adapter": False, "image_grid_pinpoints": None,
            "mm_resampler_type": None}


def export_original(parts: LlavaParts, out_dir: str | Path, *, vision_tower: str, shards: int = 2) -> Path:
    """Write ``parts`` as an original LLaVA-1.5 release: ``pytorch_model-0000k-of-0000n.bin`` shards
    with their index, a ``config.json`` with the ``mm_*`` keys training writes (the tower named by
    ``vision_tower``, not included), and the tokenizer."""
    model, out = parts.model, Path(out_dir)
    state = {}
    for key, tensor in model.state_dict().items():
        name = _original_key(key)
        if name is not None:
            state[name] = tensor.detach().clone().contiguous()
    keys = sorted(state)
    size = -(-len(keys) // shards)
    config = original_config(model.config.text_config.to_dict(), vision_tower=vision_tower,
                             vision_hidden_size=model.config.vision_config.hidden_size,
                             feature_layer=model.config.vision_feature_layer,
                             strategy=model.config.vision_feature_select_strategy)
    with atomic_dir(out) as tmp:
        weight_map = {}
        for i in range(shards):
            names = keys[i * size:(i + 1) * size]
            file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            torch.save({k: state[k] for k in names}, tmp / file)
            weight_map.update(dict.fromkeys(names, file))
        (tmp / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map},
                                                                     indent=2))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        parts.tokenizer.save_pretrained(tmp)
    return out


def export_llava_hf(parts: LlavaParts, out_dir: str | Path) -> Path:
    """Write ``parts`` as a llava-hf release: transformers' folder with its processor."""
    from transformers import LlavaProcessor

    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        parts.model.save_pretrained(tmp)
        LlavaProcessor(image_processor=parts.image_processor, tokenizer=parts.tokenizer,
                       patch_size=parts.model.config.vision_config.patch_size,
                       vision_feature_select_strategy=parts.model.config.vision_feature_select_strategy,
                       num_additional_image_tokens=1).save_pretrained(tmp)
    return out


#: The tiny world's stand-ins of released checkpoints: folder -> layout (mirror parts of the same names).
TINY_RELEASES = {"released-original": "original", "released-llava-hf": "llava-hf"}


def tiny_release_parts(model_cfg, data_dir: str | Path, seed: int) -> LlavaParts:
    """The tiny LLaVA the tiny world releases: its base parts with a projector drawn from ``seed``
    (the same call gives the same model: a test's reference for the imported ones)."""
    from llava_core.model.build import build_llava

    torch.manual_seed(seed)
    return build_llava(model_cfg, data_dir)


def write_tiny_releases(world: Path, model_cfg, seed: int) -> dict[str, Path]:
    """Write :func:`tiny_release_parts` (``{data}`` = ``world``) in both release layouts under
    ``world``; the original layout names the tiny CLIP tower as its ``mm_vision_tower``."""
    parts = tiny_release_parts(model_cfg, world, seed)
    return {"released-original": export_original(parts, world / "released-original", vision_tower="tiny-clip"),
            "released-llava-hf": export_llava_hf(parts, world / "released-llava-hf")}
