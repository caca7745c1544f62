"""4-bit and 8-bit loading through transformers' bitsandbytes integration.

As upstream's ``load_pretrained_model(load_8bit=..., load_4bit=...)``: LLM.int8() for 8-bit, NF4
with double quantisation for 4-bit, every linear layer of the LLM and the projector quantised, the
vision tower and the output head kept in the compute precision (upstream loads its CLIP tower
apart, unquantised; transformers keeps the head by default). bitsandbytes runs on CUDA, and on
x86-64 CPUs from 0.47 on, which is what the tests use; install it with ``pip install
'llava-core[quant]'``.
"""

from __future__ import annotations

import torch

from llava_core.config.validate import QUANTIZATION  # the config layer's list, checked there without torch

#: Modules kept unquantised: the tower (upstream loads it apart, in fp16) and the output head.
KEPT_MODULES = ("vision_tower", "lm_head")
# transformers matches these from the start of a module's full name (as regexes) or as suffixes:
# a bare "vision_tower" would miss "model.vision_tower.encoder...".
SKIP_MODULES = [f".*{m}" for m in KEPT_MODULES]


def check_quantization(mode: str) -> str:
    if mode not in QUANTIZATION:
        raise ValueError(f"quantization {mode!r}: expected one of {', '.join(QUANTIZATION)}")
    return mode


def quantization_config(mode: str, compute_dtype: torch.dtype):
    """The ``BitsAndBytesConfig`` of ``mode`` (``none``: None)."""
    if check_quantization(mode) == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401 - transformers needs it installed, say so plainly
    except ImportError:
        raise ValueError(f"{mode} loading needs bitsandbytes (>= 0.47 on a CPU): "
                         "pip install 'llava-core[quant]'") from None
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_MODULES)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_use_double_quant=True,
                              bnb_4bit_quant_type="nf4", llm_int8_skip_modules=SKIP_MODULES)


def quantization_of(model) -> str:
    """``8bit``, ``4bit`` or ``none``: how ``model`` was loaded."""
    q = getattr(model, "hf_quantizer", None) or getattr(getattr(model, "config", None), "quantization_config", None)
    cfg = getattr(q, "quantization_config", q)
    if cfg is None:
        return "none"
    if getattr(cfg, "load_in_4bit", False):
        return "4bit"
    return "8bit" if getattr(cfg, "load_in_8bit", False) else "none"

