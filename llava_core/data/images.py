"""Image preprocessing as in LLaVA-1.5's ``LazySupervisedDataset`` and eval scripts.

Stage 1 uses ``square`` (``pretrain.sh`` passes no ``--image_aspect_ratio``): the CLIP
processor's shortest-edge resize and centre crop, which cuts off the sides of wide images.
Stage 2 and evaluation use ``pad``: ``expand2square`` on a mean-colour canvas first, so nothing
is cropped and the border normalises to about zero. Upstream silently treats any other value as
``square``; here an unknown value is an error.

Every image processor is created or loaded through :func:`image_processor_class` /
:func:`load_image_processor`, which pin transformers' PIL backend (see there for why). A SigLIP
tower's processor resizes to its square size without cropping and normalises with mean = std =
0.5; ``pad`` then fills with that mean (127, 127, 127).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

ASPECTS = ("square", "pad")

# Saved type names that mean "the CLIP processor" (transformers 4 feature extractors, 4.x fast, 5.x PIL).
_CLIP_TYPES = ("CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPImageProcessorPil", "CLIPFeatureExtractor")
_SIGLIP_TYPES = ("SiglipImageProcessor", "SiglipImageProcessorFast", "SiglipImageProcessorPil")
TOWER_TYPES = {"clip": _CLIP_TYPES, "siglip": _SIGLIP_TYPES}


def image_processor_class(tower: str = "clip") -> type:
    """The one image processor class this project uses: transformers' PIL-backend CLIP processor.

    Why pinned: in transformers 5, ``CLIPImageProcessor`` (and ``AutoImageProcessor`` /
    ``AutoProcessor`` for a saved ``"CLIPImageProcessor"``) is the torchvision backend when
    torchvision imports and silently falls back to ``CLIPImageProcessorPil`` when it does not, so
    the pixels a model trains and is evaluated on would depend on the install. The PIL backend is
    the one that matches original LLaVA (transformers 4.31/4.37's slow ``CLIPImageProcessor``):
    shortest edge -> ``size`` with PIL bicubic on uint8, ``(h - crop) // 2`` centre crop, rescale
    1/255 and normalise in float32. The torchvision backend resizes with torchvision's antialiased
    bicubic on tensors instead, which is not bit-identical to PIL's (not measurable here: torchvision
    does not import beside the CPU torch wheel). tests/test_images.py checks the pinned class against
    a hand computation of those steps. ``tower="siglip"``: ``SiglipImageProcessorPil`` (PIL bicubic
    resize to the square size, no crop), for the same reason.
    """
    from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

    if tower not in TOWER_TYPES:
        raise ValueError(f"unknown vision tower {tower!r}; allowed: {', '.join(TOWER_TYPES)}")
    return CLIPImageProcessorPil if tower == "clip" else SiglipImageProcessorPil


def load_image_processor(path: str | Path, tower: str | None = None) -> Any:
    """Load the image processor settings saved at ``path`` into :func:`image_processor_class`.

    ``path`` is a folder or hub id with a ``preprocessor_config.json`` (or a ``processor_config.json``
    with a nested ``image_processor``), e.g. a CLIP or SigLIP tower or one of our checkpoints.
    ``tower`` None: the saved type decides (CLIP's when the folder names none). Raises
    ``ValueError`` if the saved type is not the tower's processor, which the pinned class would misread.
    """
    saved, _ = image_processor_class("clip").get_image_processor_dict(str(path))
    kind = saved.get("image_processor_type") or saved.get("feature_extractor_type")
    if tower is None:
        tower = "siglip" if kind in _SIGLIP_TYPES else "clip"
    if kind is not None and kind not in TOWER_TYPES[tower]:
        raise ValueError(f"{path}: saved image processor is {kind!r}; a {tower} tower expects one of "
                         f"{', '.join(TOWER_TYPES[tower])}")
    return image_processor_class(tower).from_pretrained(str(path))


def expand2square(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Paste ``img`` centred on a square canvas of its longer side filled with ``background``.

    Offsets round down like upstream (``(long - short) // 2``); a square image is returned as is.
    """
    width, height = img.size
    if width == height:
        return img
    side = max(width, height)
    canvas = Image.new(img.mode, (side, side), background)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def background_color(image_processor: Any) -> tuple[int, int, int]:
    """The pad colour, ``int(mean * 255)`` per channel: (122, 116, 104) for CLIP (truncated, not rounded)."""
    r, g, b = (int(x * 255) for x in image_processor.image_mean)
    return (r, g, b)


def output_hw(image_processor: Any) -> tuple[int, int]:
    """The (height, width) of the processor's output: CLIP's crop, SigLIP's (uncropped) size."""
    crop = getattr(image_processor, "crop_size", None) if getattr(image_processor, "do_center_crop", False) else None
    crop = crop or image_processor.size  # a dict in transformers 4, a SizeDict (also subscriptable) in 5
    return int(crop["height"]), int(crop["width"])


def process_image(img: Image.Image, image_processor: Any, aspect: str) -> torch.Tensor:
    """RGB-convert, optionally pad to square, run the CLIP processor; returns a ``(3, H, W)`` float tensor."""
    if aspect not in ASPECTS:
        raise ValueError(f"unknown image aspect {aspect!r}; allowed: {', '.join(ASPECTS)}")
    img = img.convert("RGB")
    if aspect == "pad":
        img = expand2square(img, background_color(image_processor))
    return image_processor(images=img, return_tensors="pt")["pixel_values"][0]


def blank_image(image_processor: Any) -> torch.Tensor:
    """Zeros of the crop size for text-only samples, so every batch element has an image tensor."""
    height, width = output_hw(image_processor)
    return torch.zeros(3, height, width)
