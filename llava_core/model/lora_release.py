"""The authors' LoRA releases (``liuhaotian/llava-v1.5-{7b,13b}-lora``) merged onto their base LLM,
into an original-layout folder that :func:`~llava_core.model.checkpoints.import_original` reads.

A release holds a PEFT adapter over ``LlavaLlamaForCausalLM`` (``adapter_config.json``,
``adapter_model.{bin,safetensors}``, keys ``base_model.model.<module>.lora_{A,B}.weight``), the
weights trained beside it (``non_lora_trainables.bin``: the projector, keys
``base_model.model.model.mm_projector.*``) and the LLaVA ``config.json``. Merging is PEFT's:
``W + (lora_alpha / r) * B @ A`` (``lora_alpha / sqrt(r)`` with ``use_rslora``), in fp32.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from llava_core.io import atomic_dir
from llava_core.model.checkpoints import _load_tensor_file, read_state_dict

PEFT_PREFIX = "base_model.model."
NON_LORA = "non_lora_trainables.bin"


def _adapter_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (adapter_dir / name).is_file():
            return _load_tensor_file(adapter_dir / name)
    raise FileNotFoundError(f"{adapter_dir}: no adapter_model.safetensors or adapter_model.bin")


def base_folder(base: str | Path) -> Path:
    """A local folder of the base LLM: ``base`` itself, or the hub snapshot of a hub id."""
    if Path(base).is_dir():
        return Path(base)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(base), allow_patterns=["*.json", "*.model", "*.bin", "*.safetensors"]))


def merge_lora_release(adapter_dir: str | Path, base: str | Path, out_dir: str | Path) -> Path:
    """Merge the LoRA release in ``adapter_dir`` onto the base LLM ``base`` (folder or hub id); write
    an original-layout checkpoint (Llama + ``model.mm_projector``, the release's ``config.json``,
    the base's tokenizer) to ``out_dir``."""
    from transformers import AutoTokenizer

    adapter_dir, base_dir = Path(adapter_dir), base_folder(base)
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    r, alpha = int(acfg["r"]), float(acfg["lora_alpha"])
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    adapter = _adapter_weights(adapter_dir)
    state = dict(read_state_dict(base_dir))
    merged = 0
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        b = adapter[key.replace(".lora_A.", ".lora_B.")]
        target = key.removeprefix(PEFT_PREFIX).replace(".lora_A.weight", ".weight")
        if target not in state:
            raise ValueError(f"{adapter_dir}: adapter weight {key!r} has no base weight {target!r} in {base_dir}")
        w = state[target]
        state[target] = (w.float() + scale * (b.float() @ a.float())).to(w.dtype)
        merged += 1
    if not merged:
        raise ValueError(f"{adapter_dir}: the adapter has no lora_A/lora_B weights")
    if (adapter_dir / NON_LORA).is_file():
        for key, tensor in _load_tensor_file(adapter_dir / NON_LORA).items():
            state[key.removeprefix(PEFT_PREFIX)] = tensor
    if "model.mm_projector.0.weight" not in state:
        raise ValueError(f"{adapter_dir}: no projector weights ({NON_LORA} with model.mm_projector.*)")
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        torch.save({k: v.contiguous() for k, v in state.items()}, tmp / "pytorch_model.bin")
        shutil.copyfile(adapter_dir / "config.json", tmp / "config.json")
        AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)
    return out
