"""Pixel-level checks of pad-to-square and the CLIP processor path (spec section 1)."""

from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image

from llava_core.data.images import background_color, blank_image, expand2square, process_image

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def clip_processor(side: int = 32, crop: tuple[int, int] | None = None):
    import transformers

    height, width = crop or (side, side)
    with warnings.catch_warnings():  # without torchvision, transformers 5 falls back to the PIL backend
        warnings.simplefilter("ignore")
        return transformers.CLIPImageProcessor(size={"shortest_edge": side},
                                               crop_size={"height": height, "width": width})


@pytest.fixture(scope="module")
def proc():
    return clip_processor()


def normalised(rgb: tuple[int, int, int]) -> torch.Tensor:
    return (torch.tensor(rgb, dtype=torch.float32) / 255 - MEAN) / STD


def pixels(img: Image.Image) -> list[list[tuple]]:
    return [[img.getpixel((x, y)) for x in range(img.width)] for y in range(img.height)]


def test_expand2square_wide_exact_canvas():
    img = Image.new("RGB", (4, 2))
    colours = [[(10, 0, 0), (20, 0, 0), (30, 0, 0), (40, 0, 0)],
               [(0, 10, 0), (0, 20, 0), (0, 30, 0), (0, 40, 0)]]
    for y, row in enumerate(colours):
        for x, c in enumerate(row):
            img.putpixel((x, y), c)
    bg = (122, 116, 104)
    out = expand2square(img, bg)
    assert out.size == (4, 4)
    assert pixels(out) == [[bg] * 4, colours[0], colours[1], [bg] * 4]


def test_expand2square_tall_odd_offset_rounds_down():
    img = Image.new("RGB", (2, 3), RED)
    bg = (1, 2, 3)
    out = expand2square(img, bg)
    assert out.size == (3, 3)
    assert pixels(out) == [[RED, RED, bg]] * 3  # (3 - 2) // 2 == 0: image on the left


def test_expand2square_square_unchanged():
    img = Image.new("RGB", (5, 5), BLUE)
    assert expand2square(img, (0, 0, 0)) is img


def test_background_color_for_clip(proc):
    assert background_color(proc) == (122, 116, 104)


def test_pad_border_normalises_to_about_zero(proc):
    out = process_image(Image.new("RGB", (64, 32), RED), proc, "pad")
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    # 64x64 canvas -> 32x32: rows 0-7 and 24-31 are border, rows 8-23 the red image
    assert out[:, :6].abs().max() < 0.05 and out[:, 26:].abs().max() < 0.05
    assert torch.allclose(out[:, 10:22], normalised(RED)[:, None, None].expand(3, 12, 32), atol=0.02)


def test_square_centre_crops_the_middle(proc):
    img = Image.new("RGB", (96, 32))
    for i, colour in enumerate((RED, GREEN, BLUE)):
        img.paste(colour, (32 * i, 0, 32 * (i + 1), 32))
    square = process_image(img, proc, "square")
    assert square.shape == (3, 32, 32)
    assert torch.allclose(square, normalised(GREEN)[:, None, None].expand(3, 32, 32), atol=0.02)
    padded = process_image(img, proc, "pad")  # pad keeps the sides: red on the left, blue on the right
    assert torch.allclose(padded[:, 16, 1], normalised(RED), atol=0.05)
    assert torch.allclose(padded[:, 16, 30], normalised(BLUE), atol=0.05)


def test_non_rgb_inputs_are_converted(proc):
    for img in (Image.new("L", (40, 32), 255), Image.new("RGBA", (32, 40), (255, 255, 255, 0))):
        out = process_image(img, proc, "pad")
        assert out.shape == (3, 32, 32)
    assert torch.allclose(process_image(Image.new("L", (32, 32), 255), proc, "square"),
                          normalised((255, 255, 255))[:, None, None].expand(3, 32, 32), atol=0.02)


def test_unknown_aspect_lists_allowed(proc):
    with pytest.raises(ValueError, match="allowed: square, pad"):
        process_image(Image.new("RGB", (8, 8)), proc, "anyres")


def test_blank_image_uses_crop_size():
    assert torch.equal(blank_image(clip_processor(32)), torch.zeros(3, 32, 32))
    assert blank_image(clip_processor(32, crop=(24, 40))).shape == (3, 24, 40)


def test_default_clip_336_shape():
    proc = clip_processor(336)
    out = process_image(Image.new("RGB", (500, 300), GREEN), proc, "pad")
    assert out.shape == (3, 336, 336)
    assert out[:, :40].abs().max() < 0.05  # border rows from the pad
