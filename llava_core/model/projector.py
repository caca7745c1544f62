"""The vision-language projector: ``linear`` (LLaVA-1.0) or ``mlp{N}x_gelu`` (LLaVA-1.5: N = 2).

transformers' LLaVA has one projector, ``Linear -> GELU -> Linear`` (``linear_1``, ``linear_2``),
so LLaVA-1.5's ``mlp2x_gelu`` is that module, and LLaVA-1.0's ``linear`` the same module with an
identity activation and a frozen identity second layer: both load with
``AutoModelForImageTextToText``. A deeper ``mlp{N}x_gelu`` (N >= 3, as upstream's
``build_vision_projector`` builds it: ``Linear (GELU Linear) x (N - 1)``) is :class:`MlpProjector`,
with the same parameter names continued (``linear_3``, ...); transformers' class cannot hold it,
so such checkpoints load through ``llava_core.model.checkpoints.load_llava`` only.

Between stages the projector travels as upstream's ``mm_projector.bin``: ``model.mm_projector``
(linear) or ``model.mm_projector.{0,2,4,...}`` (the Linear layers of upstream's ``nn.Sequential``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from llava_core.config.schema import projector_layers

_ORIGINAL_LINEAR = "model.mm_projector"  # LLaVA-1.0: a bare nn.Linear


class MlpProjector(nn.Module):
    """``mlp{N}x_gelu`` for N >= 3: ``linear_1``, then ``GELU -> linear_k`` for k = 2..N."""

    def __init__(self, config, layers: int):
        super().__init__()
        if layers < 3:
            raise ValueError(f"MlpProjector is for 3 or more layers; got {layers}")
        vision = config.vision_config.hidden_size * (len(config.vision_feature_layer)
                                                     if isinstance(config.vision_feature_layer, list) else 1)
        text = config.text_config.hidden_size
        bias = getattr(config, "multimodal_projector_bias", True)
        self.layers = layers
        self.linear_1 = nn.Linear(vision, text, bias=bias)
        for k in range(2, layers + 1):
            setattr(self, f"linear_{k}", nn.Linear(text, text, bias=bias))
        self.act = nn.GELU()

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        x = self.linear_1(image_features)
        for k in range(2, self.layers + 1):
            x = getattr(self, f"linear_{k}")(self.act(x))
        return x


def fresh_projector(config, projector_type: str, dtype: torch.dtype) -> nn.Module:
    """A newly initialised projector of ``projector_type`` for a LLaVA ``config`` (default
    ``nn.Linear`` init, as upstream)."""
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    n = projector_layers(projector_type)
    if n >= 3:
        return MlpProjector(config, n).to(dtype)
    proj = LlavaMultiModalProjector(config).to(dtype)
    if n == 1:
        # x -> linear_2(identity(linear_1(x))) = linear_1(x) while linear_2 stays the identity.
        with torch.no_grad():
            proj.linear_2.weight.copy_(torch.eye(proj.linear_2.weight.shape[0], dtype=dtype))
            proj.linear_2.bias.zero_()
    return proj


def is_linear_projector(model) -> bool:
    """True for LLaVA-1.0's single linear projector (identity activation, identity linear_2)."""
    return getattr(model.config, "projector_hidden_act", "gelu") == "linear"


def _original_names(model) -> dict[str, str]:
    """Our layer name -> upstream's, for the model's projector."""
    proj = model.model.multi_modal_projector
    if is_linear_projector(model):
        return {"linear_1": _ORIGINAL_LINEAR}
    n = proj.layers if isinstance(proj, MlpProjector) else 2
    return {f"linear_{k}": f"model.mm_projector.{2 * (k - 1)}" for k in range(1, n + 1)}


def save_projector(model, path: Path) -> None:
    """Write the projector as the original ``mm_projector.bin``."""
    from llava_core.io import atomic_write

    names = _original_names(model)
    out = {}
    for key, tensor in model.model.multi_modal_projector.state_dict().items():
        layer, param = key.split(".", 1)
        if layer in names:  # a linear projector's identity linear_2 is not part of it
            out[f"{names[layer]}.{param}"] = tensor.detach().cpu().clone()
    with atomic_write(path, "wb") as fh:
        torch.save(out, fh)


def load_projector(model, path: Path) -> None:
    """Load an original-layout ``mm_projector.bin`` into the model's projector."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    ours = {v: k for k, v in _original_names(model).items()}
    mapped = {}
    for key, tensor in state.items():
        prefix, param = key.rsplit(".", 1)
        if prefix not in ours:
            raise ValueError(f"{path}: unexpected key {key!r} for a {model.config.projector_type} projector; "
                             f"expected {sorted(ours)} + .weight/.bias")
        mapped[f"{ours[prefix]}.{param}"] = tensor
    proj = model.model.multi_modal_projector
    proj.load_state_dict({k: v.to(proj.linear_1.weight.dtype) for k, v in mapped.items()},
                         strict=not is_linear_projector(model))
