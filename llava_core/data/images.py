"""Image preprocessing as in LLaVA-1.5's ``LazySupervisedDataset`` and eval scripts.

Stage 1 uses ``square`` (``pretrain.sh`` passes no ``--image_aspect_ratio``): the CLIP
processor's shortest-edge resize and centre crop, which cuts off the sides of wide images.
Stage 2 and evaluation use ``pad``: ``expand2square`` on a mean-colour canvas first, so nothing
is cropped and the border normalises to about zero. Upstream silently treats any other value as
``square``; here an unknown value is an error.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

ASPECTS = ("square", "pad")


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


def _crop_hw(image_processor: Any) -> tuple[int, int]:
    crop = image_processor.crop_size  # a dict in transformers 4, a SizeDict (also subscriptable) in 5
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
    height, width = _crop_hw(image_processor)
    return torch.zeros(3, height, width)
