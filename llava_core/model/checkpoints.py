"""LLaVA checkpoints in and out: our transformers folders, original LLaVA imports, LoRA merges.

Our checkpoint is a plain transformers ``LlavaForConditionalGeneration`` folder *with* a
``LlavaProcessor``, so ``AutoModelForImageTextToText.from_pretrained(dir)`` and
``AutoProcessor.from_pretrained(dir)`` both work and the processor expands ``"<image>"`` into
exactly ``config.image_seq_length`` image tokens (for a CLIP tower it needs ``patch_size`` and
``num_additional_image_tokens=1``, the CLS position; see the spec 7.2).

Imports:

* :func:`import_original`: an original ``liuhaotian/llava-v1.5-*`` folder (``LlavaLlamaForCausalLM``:
  Llama weights, ``model.mm_projector.{0,2}``, ``mm_*`` config keys, no CLIP weights) -> ours,
  with the key renames of transformers' ``convert_llava_weights_to_hf.py`` (spec 7.2). The
  tokenizer gains ``<image>`` (and ``<pad>`` when it has no pad token); the new embedding and
  ``lm_head`` rows are the mean of the old rows (deterministic, where the transformers script
  samples around the mean), and the matrices are padded to a multiple of 64.
* :func:`import_llava_hf`: a ``llava-hf/*`` folder, already in this layout, re-saved with a processor
  that carries the CLIP-specific settings.
* :func:`merge_lora`: a PEFT adapter written by the training runner (plus its
  ``non_lora_trainables.safetensors``, the projector trained beside the adapter) merged into a full
  checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from transformers import (
    AutoProcessor,
    AutoTokenizer,
    CLIPVisionModel,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from llava_core.data.images import load_image_processor, output_hw
from llava_core.data.tokenize import use_legacy_sentencepiece
from llava_core.io import apply_umask, atomic_dir, read_json
from llava_core.model.build import IMAGE_TOKEN, LlavaParts, torch_dtype

log = logging.getLogger(__name__)

NON_LORA_FILE = "non_lora_trainables.safetensors"
_STRATEGIES = ("default", "full")


# ----------------------------------------------------------------------------- our format
def has_cls_token(vision_config) -> bool:
    """CLIP's vision model has a CLS position before the patches; SigLIP's has none."""
    return not str(getattr(vision_config, "model_type", "clip")).startswith("siglip")


def expected_image_tokens(vision_config, strategy: str) -> int:
    """Image tokens per image: patches, plus a CLIP tower's CLS position under ``full``."""
    n = (vision_config.image_size // vision_config.patch_size) ** 2
    return n + (1 if strategy == "full" and has_cls_token(vision_config) else 0)


def make_processor(model: LlavaForConditionalGeneration, tokenizer, image_processor, *,
                   vision_feature_select_strategy: str | None = "default", chat_template: str | None = None,
                   image_token: str = IMAGE_TOKEN) -> LlavaProcessor:
    """A ``LlavaProcessor`` consistent with ``model.config``; raises ``ValueError`` if they disagree."""
    cfg = model.config
    strategy = vision_feature_select_strategy or cfg.vision_feature_select_strategy
    if strategy not in _STRATEGIES:
        raise ValueError(f"vision_feature_select_strategy={strategy!r}; expected one of {_STRATEGIES}")
    if strategy != cfg.vision_feature_select_strategy:
        raise ValueError(f"vision_feature_select_strategy={strategy!r} but the model config says "
                         f"{cfg.vision_feature_select_strategy!r}")
    image_id = tokenizer.convert_tokens_to_ids(image_token)
    if image_id is None or image_id == tokenizer.unk_token_id or image_id != cfg.image_token_index:
        raise ValueError(f"the tokenizer maps {image_token!r} to {image_id}, the model config's image_token_index "
                         f"is {cfg.image_token_index}")
    if len(tokenizer(image_token, add_special_tokens=False)["input_ids"]) != 1:
        raise ValueError(f"the tokenizer splits {image_token!r}; add it as a special token")
    cls = 1 if has_cls_token(cfg.vision_config) else 0
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=cfg.vision_config.patch_size, vision_feature_select_strategy=strategy,
                               num_additional_image_tokens=cls, image_token=image_token,
                               chat_template=chat_template or getattr(tokenizer, "chat_template", None))
    h, w = output_hw(image_processor)
    n = (h // processor.patch_size) * (w // processor.patch_size) + cls - (cls if strategy == "default" else 0)
    if n != cfg.image_seq_length or n != expected_image_tokens(cfg.vision_config, strategy):
        raise ValueError(f"the processor would expand {image_token!r} to {n} tokens ({h}x{w} crop, patch "
                         f"{processor.patch_size}) but the model expects image_seq_length={cfg.image_seq_length} "
                         f"(vision image_size {cfg.vision_config.image_size})")
    return processor


def save_llava(model, tokenizer, image_processor, out_dir: str | Path, *,
               vision_feature_select_strategy: str | None = "default", chat_template: str | None = None) -> Path:
    """Write ``model`` + ``LlavaProcessor`` (tokenizer, image processor) to ``out_dir``, atomically.

    ``vision_feature_select_strategy=None`` takes the model config's; a value that differs from
    it is an error rather than a silently wrong processor.
    """
    if not isinstance(model, LlavaForConditionalGeneration):
        raise TypeError(f"save_llava needs a LlavaForConditionalGeneration (merge adapters first), "
                        f"got {type(model).__name__}")
    bad = [n for n, p in [*model.named_parameters(), *model.named_buffers()] if p.is_meta]
    if bad:
        raise ValueError(f"{len(bad)} tensors are still on the meta device, e.g. {bad[0]}")
    processor = make_processor(model, tokenizer, image_processor,
                               vision_feature_select_strategy=vision_feature_select_strategy,
                               chat_template=chat_template)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        # A standalone preprocessor_config.json too, for tools that load only the image processor.
        image_processor.save_pretrained(tmp)
        apply_umask(tmp)
    return out_dir


def load_llava(model_dir: str | Path, dtype: str = "auto", quantization: str = "none") -> LlavaParts:
    """Model, tokenizer and image processor of a transformers LLaVA folder (ours or llava-hf).

    ``dtype`` is one of :func:`llava_core.model.build.torch_dtype`'s names (``auto``: bf16 on GPU,
    fp32 on CPU). ``quantization`` (``none``, ``8bit``, ``4bit``) loads the LLM's linear layers
    through bitsandbytes (:mod:`llava_core.model.quantize`), on the GPU when there is one. The
    tokenizer comes from the ``LlavaProcessor`` when the folder has one, else from the tokenizer
    files; the image processor always from :func:`load_image_processor`, because ``AutoProcessor``
    would pick its backend by whether torchvision is installed.
    """
    from llava_core.model.quantize import quantization_config

    model_dir = Path(model_dir)
    dt = torch_dtype(dtype)
    quant = quantization_config(quantization, dt)
    extra = {"quantization_config": quant, "device_map": "cuda" if torch.cuda.is_available() else "cpu"} if quant else {}
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=dt, **extra)
    _deeper_projector(model, model_dir)
    if (model_dir / "processor_config.json").exists():
        tokenizer = AutoProcessor.from_pretrained(model_dir).tokenizer
    else:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    image_processor = load_image_processor(model_dir)
    # A saved tokenizer is re-read with its config's flags: give it upstream's legacy stream again.
    use_legacy_sentencepiece(tokenizer)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_id != model.config.image_token_index:
        raise ValueError(f"{model_dir}: the tokenizer maps {IMAGE_TOKEN!r} to {image_id}, the config's "
                         f"image_token_index is {model.config.image_token_index}")
    return LlavaParts(model, tokenizer, image_processor)


def _deeper_projector(model, model_dir: Path) -> None:
    """An ``mlp{N}x_gelu`` projector with N >= 3 (transformers' class holds two layers): rebuilt
    and loaded from the checkpoint's own weights."""
    from llava_core.config.schema import projector_layers
    from llava_core.model.projector import fresh_projector

    ptype = getattr(model.config, "projector_type", "mlp2x_gelu")
    if projector_layers(ptype) < 3:
        return
    proj = fresh_projector(model.config, ptype, model.model.multi_modal_projector.linear_1.weight.dtype)
    prefixes = ("multi_modal_projector.", "model.multi_modal_projector.")
    state = {k.split("multi_modal_projector.", 1)[1]: v for k, v in read_state_dict(model_dir).items()
             if k.startswith(prefixes)}
    proj.load_state_dict(state, strict=True)
    model.model.multi_modal_projector = proj


# ----------------------------------------------------------------------------- original LLaVA
_LLAVA_ONLY_KEYS = {
    "image_aspect_ratio", "image_grid_pinpoints", "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "use_mm_proj",
    "tokenizer_padding_side", "tokenizer_model_max_length", "unfreeze_mm_vision_tower", "architectures",
    "model_type", "_name_or_path", "transformers_version", "vision_tower",
}
_SELECT_FEATURE = {"patch": "default", "cls_patch": "full"}
_VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."


def _check_original_config(cfg: dict, src: Path) -> None:
    ptype = cfg.get("mm_projector_type", "linear")  # upstream's default when the key is absent
    m = re.fullmatch(r"mlp(\d+)x_gelu", str(ptype))
    if not m or m.group(1) != "2":
        raise ValueError(f"{src}: mm_projector_type={ptype!r} is not supported; transformers' LLaVA projector "
                         "is Linear-GELU-Linear, i.e. only 'mlp2x_gelu' (LLaVA-1.5) converts")
    if cfg.get("mm_use_im_start_end") or cfg.get("mm_use_im_patch_token"):
        raise ValueError(f"{src}: mm_use_im_start_end/mm_use_im_patch_token are set; only LLaVA-1.5 checkpoints "
                         "without image start/end/patch tokens convert")
    if cfg.get("mm_patch_merge_type", "flat") != "flat":
        raise ValueError(f"{src}: mm_patch_merge_type={cfg['mm_patch_merge_type']!r}; only 'flat' (v1.5) converts")
    feature = cfg.get("mm_vision_select_feature", "patch")
    if feature not in _SELECT_FEATURE:
        raise ValueError(f"{src}: mm_vision_select_feature={feature!r}; expected one of {sorted(_SELECT_FEATURE)}")
    if cfg.get("mm_resampler_type"):
        raise ValueError(f"{src}: mm_resampler_type={cfg['mm_resampler_type']!r} is not supported")


def _load_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) torch.save file cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(src: str | Path) -> dict[str, torch.Tensor]:
    """All weights of a folder: safetensors or ``.bin``, single file or shards with an index."""
    src = Path(src)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (src / index).exists():
            files = sorted(set(read_json(src / index)["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for name in files:
                state.update(_load_tensor_file(src / name))
            return state
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).exists():
            return dict(_load_tensor_file(src / single))
    raise FileNotFoundError(f"{src}: no model.safetensors, pytorch_model.bin or shard index")


def _text_config(cfg: dict) -> LlamaConfig:
    text = {k: v for k, v in cfg.items() if not k.startswith("mm_") and k not in _LLAVA_ONLY_KEYS}
    text["architectures"] = ["LlamaForCausalLM"]
    return LlamaConfig.from_dict(text)


def _map_original_key(key: str) -> str | None:
    """Original ``LlavaLlamaForCausalLM`` name -> in-memory ``LlavaForConditionalGeneration`` name."""
    if key.endswith(".inv_freq"):
        return None
    if key.startswith(_VISION_PREFIX):
        return "model.vision_tower." + key[len(_VISION_PREFIX):]
    if key == "lm_head.weight":
        return key
    for old, new in (("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
                     ("model.mm_projector.2.", "model.multi_modal_projector.linear_2.")):
        if key.startswith(old):
            return new + key[len(old):]
    if key.startswith(("model.embed_tokens.", "model.layers.", "model.norm.")):
        return "model.language_model." + key[len("model."):]
    raise ValueError(f"unexpected weight {key!r} in an original LLaVA checkpoint")


def _grow_rows(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` with extra rows equal to the mean of the existing ones (computed in fp32)."""
    if rows <= weight.shape[0]:
        return weight
    mean = weight.float().mean(dim=0, keepdim=True).to(weight.dtype)
    return torch.cat([weight, mean.expand(rows - weight.shape[0], -1)], dim=0)


def _add_llava_tokens(tokenizer) -> None:
    """``<image>`` as a special token; ``<pad>`` too when there is no pad token (as llava-hf)."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]},
                                     replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})


def import_original(src_dir: str | Path, out_dir: str | Path, *, vision_tower: str | Path | None = None,
                    pad_to_multiple_of: int = 64) -> Path:
    """Convert an original LLaVA-1.5 checkpoint folder into our transformers folder at ``out_dir``.

    ``vision_tower`` (a local folder or hub name) defaults to the config's ``mm_vision_tower``; CLIP
    weights found in the checkpoint (``model.vision_tower.vision_tower.vision_model.*``) replace
    the tower's. Weights keep the checkpoint's dtype.
    """
    from accelerate import init_empty_weights

    src = Path(src_dir)
    cfg = read_json(src / "config.json")
    _check_original_config(cfg, src)
    tower = vision_tower or cfg.get("mm_vision_tower") or cfg.get("vision_tower")
    if not tower:
        raise ValueError(f"{src}: no mm_vision_tower in config.json; pass vision_tower")

    state = read_state_dict(src)
    if "model.mm_projector.0.weight" not in state and (src / "mm_projector.bin").exists():
        state.update(_load_tensor_file(src / "mm_projector.bin"))
    mapped = {}
    for key, tensor in state.items():
        new = _map_original_key(key)
        if new is not None:
            mapped[new] = tensor
    missing = [k for k in ("model.language_model.embed_tokens.weight", "lm_head.weight",
                           "model.multi_modal_projector.linear_1.weight", "model.multi_modal_projector.linear_2.weight")
               if k not in mapped]
    if missing:
        raise ValueError(f"{src}: the checkpoint lacks {missing}")
    dtype = mapped["model.language_model.embed_tokens.weight"].dtype

    vision = CLIPVisionModel.from_pretrained(str(tower), dtype=dtype)
    image_processor = load_image_processor(tower)
    for key, tensor in vision.state_dict().items():
        mapped.setdefault("model.vision_tower." + key, tensor)
    mm_hidden = cfg.get("mm_hidden_size")
    if mm_hidden is not None and mm_hidden != vision.config.hidden_size:
        raise ValueError(f"{src}: mm_hidden_size={mm_hidden} but the vision tower {tower} has hidden size "
                         f"{vision.config.hidden_size}")

    tokenizer = AutoTokenizer.from_pretrained(src, use_fast=True)
    _add_llava_tokens(tokenizer)
    text_config = _text_config(cfg)
    old_vocab = mapped["model.language_model.embed_tokens.weight"].shape[0]
    if len(tokenizer) > old_vocab:
        mult = max(1, pad_to_multiple_of)
        rows = -(-len(tokenizer) // mult) * mult
        for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
            mapped[key] = _grow_rows(mapped[key], rows)
        text_config.vocab_size = rows
    text_config.pad_token_id = tokenizer.pad_token_id

    strategy = _SELECT_FEATURE[cfg.get("mm_vision_select_feature", "patch")]
    config = LlavaConfig(
        vision_config=vision.config, text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), projector_hidden_act="gelu",
        vision_feature_layer=int(cfg.get("mm_vision_select_layer", -2)), vision_feature_select_strategy=strategy,
        image_seq_length=expected_image_tokens(vision.config, strategy), multimodal_projector_bias=True,
    )
    config.pad_token_id = tokenizer.pad_token_id
    config.projector_type = "mlp2x_gelu"
    config.image_aspect_ratio = cfg.get("image_aspect_ratio", "square")  # informational: how it was trained
    with init_empty_weights(include_buffers=False):
        model = LlavaForConditionalGeneration(config)
    result = model.load_state_dict(mapped, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{src}: weights do not fit the LLaVA model: missing {result.missing_keys[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    model.eval()
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (tokenizer.bos_token_id, tokenizer.eos_token_id,
                                                            tokenizer.pad_token_id)
    log.info("imported %s (vocab %d -> %d, %d image tokens)", src, old_vocab, text_config.vocab_size,
             config.image_seq_length)
    return save_llava(model, tokenizer, image_processor, out_dir, vision_feature_select_strategy=strategy)


def import_llava_hf(src_dir: str | Path, out_dir: str | Path) -> Path:
    """Re-save a ``llava-hf`` checkpoint (weights in their dtype, its tokenizer and chat template)."""
    src = Path(src_dir)
    model = LlavaForConditionalGeneration.from_pretrained(src, dtype="auto")
    if (src / "processor_config.json").exists() or (src / "preprocessor_config.json").exists():
        try:
            processor = AutoProcessor.from_pretrained(src)
            tokenizer, image_processor = processor.tokenizer, load_image_processor(src)
            chat_template = getattr(processor, "chat_template", None)
        except (OSError, ValueError, TypeError):
            processor = None
    else:
        processor = None
    if processor is None:
        tokenizer = AutoTokenizer.from_pretrained(src)
        image_processor = load_image_processor(src)
        chat_template = getattr(tokenizer, "chat_template", None)
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        raise ValueError(f"{src}: the tokenizer has no {IMAGE_TOKEN!r} token; is this a llava-hf checkpoint?")
    return save_llava(model, tokenizer, image_processor, out_dir, vision_feature_select_strategy=None,
                      chat_template=chat_template)


# ----------------------------------------------------------------------------- LoRA
def save_non_lora_trainables(peft_model, adapter_dir: str | Path) -> list[str]:
    """Write the trainable parameters that are not LoRA weights (the projector, a trainable head)
    beside a PEFT adapter, under the plain LLaVA names; PEFT's own files leave them out."""
    from safetensors.torch import save

    from llava_core.io import atomic_write

    prefix = "base_model.model."
    state = {}
    for name, p in peft_model.named_parameters():
        if p.requires_grad and "lora_" not in name:
            state[name[len(prefix):] if name.startswith(prefix) else name] = p.detach().cpu().contiguous().clone()
    path = Path(adapter_dir) / NON_LORA_FILE
    with atomic_write(path, "wb") as fh:
        fh.write(save(state, metadata={"format": "pt"}))
    return sorted(state)


def merge_lora(base_parts_or_dir: LlavaParts | str | Path, adapter_dir: str | Path, out_dir: str | Path, *,
               dtype: str = "fp32") -> Path:
    """Merge a PEFT adapter (over the whole LLaVA, LoRA only in the language model) into a checkpoint.

    The base is a :class:`LlavaParts` or a folder for :func:`load_llava`. ``non_lora_trainables``
    beside the adapter (written by the runner) are loaded first, so the projector trained with the
    adapter is kept.
    """
    from peft import PeftModel

    parts = base_parts_or_dir if isinstance(base_parts_or_dir, LlavaParts) else load_llava(base_parts_or_dir, dtype)
    adapter_dir = Path(adapter_dir)
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    targets = acfg.get("target_modules")
    if isinstance(targets, list) and not all("language_model" in str(t) for t in targets):
        log.warning("adapter target_modules %s may also match the vision tower", targets)
    extra = adapter_dir / NON_LORA_FILE
    if extra.exists():
        from safetensors.torch import load_file

        params = dict(parts.model.named_parameters())
        loaded = load_file(str(extra))
        unknown = sorted(set(loaded) - set(params))
        if unknown:
            raise ValueError(f"{extra}: unknown parameters {unknown[:5]}")
        with torch.no_grad():
            for name, tensor in loaded.items():
                params[name].copy_(tensor.to(params[name].dtype))
    peft_model = PeftModel.from_pretrained(parts.model, str(adapter_dir))
    merged = peft_model.merge_and_unload()
    return save_llava(merged, parts.tokenizer, parts.image_processor, out_dir, vision_feature_select_strategy=None)
