"""Pixel-level checks of pad-to-square and the CLIP processor path (spec section 1), and of the
pinned PIL backend against a hand computation of transformers 4.37's slow ``CLIPImageProcessor``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from llava_core.data.images import (
    background_color,
    blank_image,
    expand2square,
    image_processor_class,
    load_image_processor,
    process_image,
)

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def clip_processor(side: int = 32, crop: tuple[int, int] | None = None):
    height, width = crop or (side, side)
    return image_processor_class()(size={"shortest_edge": side}, crop_size={"height": height, "width": width})


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


# ----------------------------------------------------------------------------- hand computation
# The original LLaVA ran transformers 4.31/4.37's slow CLIPImageProcessor. Its steps, read from
# transformers 4.37.2 (image_processing_clip.py, image_transforms.py) and unchanged in 5.x's PIL backend:
# output size: shortest edge -> 336, the other side int(336 * long / short) (truncated, not rounded);
# resize: a uint8 PIL image with Image.BICUBIC (resample=3 in openai/clip-vit-large-patch14-336);
# centre crop at ((h - 336) // 2, (w - 336) // 2); rescale by 1/255; normalise with the CLIP mean/std.
MEAN64, STD64 = MEAN.double().numpy(), STD.double().numpy()


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    """Random RGB pixels, so that any shift, size or filter difference shows up."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def hand_clip(img: Image.Image, side: int = 336) -> np.ndarray:
    """The reference pixels in float64, (3, side, side)."""
    width, height = img.size
    short, long = min(width, height), max(width, height)
    new_long = int(side * long / short)
    new_w, new_h = (side, new_long) if width <= height else (new_long, side)
    resized = np.asarray(img.convert("RGB").resize((new_w, new_h), Image.BICUBIC))
    top, left = (new_h - side) // 2, (new_w - side) // 2
    crop = resized[top:top + side, left:left + side].astype(np.float64)
    out = (crop / 255 - MEAN64) / STD64
    return out.transpose(2, 0, 1)


def hand_expand2square(img: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Pad-to-square in numpy: the image centred (offsets floored) on a canvas of its longer side."""
    arr = np.asarray(img.convert("RGB"))
    height, width = arr.shape[:2]
    side = max(width, height)
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = fill
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top:top + height, left:left + width] = arr
    return Image.fromarray(canvas, "RGB")


@pytest.fixture(scope="module")
def proc336():
    return clip_processor(336)


# 500x375 (landscape, exact 448), 333x517 (portrait, 521.66 truncated to 521, odd crop offset),
# 7x5 (tiny: upsampled about 67x; its height is not 1 or 3, which transformers 4.37 misread as channels).
@pytest.mark.parametrize("size, seed", [((500, 375), 0), ((333, 517), 1), ((7, 5), 2)])
def test_pinned_processor_matches_hand_computation(proc336, size, seed):
    img = noise_image(*size, seed)
    ours = process_image(img, proc336, "square").double().numpy()
    ref = hand_clip(img)
    assert ours.shape == ref.shape == (3, 336, 336)
    diff = np.abs(ours - ref).max()
    print(f"{size}: max abs diff {diff:.3g}")
    assert diff < 1e-6


def test_pad_path_matches_hand_computation(proc336):
    img = noise_image(333, 517, 3)
    fill = (122, 116, 104)  # int(mean * 255), spec section 1
    ours = process_image(img, proc336, "pad").double().numpy()
    ref = hand_clip(hand_expand2square(img, fill))
    diff = np.abs(ours - ref).max()
    print(f"pad (333, 517): max abs diff {diff:.3g}")
    assert diff < 1e-6
    # 92 px of pad each side of the 517 px canvas are about 60 of 336 columns: exactly the fill colour there
    border = (np.array(fill) / 255 - MEAN64) / STD64
    assert np.abs(ours[:, :, :50] - border[:, None, None]).max() < 1e-6
    assert np.abs(border).max() < 0.012  # the truncated mean colour normalises to about zero


# ----------------------------------------------------------------------------- backend pinning
OPENAI_CLIP_336_CONFIG = {  # the legacy format of openai/clip-vit-large-patch14-336/preprocessor_config.json
    "crop_size": 336, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": MEAN.tolist(), "image_std": STD.tolist(),
    "resample": 3, "size": 336,
}


def test_load_image_processor_reads_the_legacy_clip_config(tmp_path, proc336):
    from transformers import CLIPImageProcessorPil

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(OPENAI_CLIP_336_CONFIG))
    loaded = load_image_processor(tmp_path)
    assert type(loaded) is CLIPImageProcessorPil and loaded.backend == "pil"
    assert loaded.size["shortest_edge"] == 336
    assert (loaded.crop_size["height"], loaded.crop_size["width"]) == (336, 336)
    assert int(loaded.resample) == int(Image.BICUBIC)
    img = noise_image(333, 517, 4)
    assert np.abs(process_image(img, loaded, "square").double().numpy() - hand_clip(img)).max() < 1e-6


def test_load_image_processor_rejects_other_processors(tmp_path):
    """A processor the tower would misread is refused: another family's, or SigLIP's for a CLIP tower."""
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "ConvNextImageProcessor"}))
    with pytest.raises(ValueError, match="ConvNextImageProcessor"):
        load_image_processor(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "SiglipImageProcessor"}))
    with pytest.raises(ValueError, match="SiglipImageProcessor.*a clip tower"):
        load_image_processor(tmp_path, tower="clip")
    assert "Siglip" in type(load_image_processor(tmp_path)).__name__  # the saved type picks the tower


@pytest.fixture
def torchvision_installed(monkeypatch):
    """Make transformers behave as if torchvision were importable: ``AutoImageProcessor`` then picks
    the torchvision backend, stood in for by a subclass we can recognise (the real one cannot import here)."""
    import transformers.models.auto.image_processing_auto as auto

    pil_cls = image_processor_class()

    class FakeTorchvisionCLIP(pil_cls):
        pass

    real = auto.get_image_processor_class_from_name
    monkeypatch.setattr(auto, "is_torchvision_available", lambda: True)
    monkeypatch.setattr(auto, "get_image_processor_class_from_name",
                        lambda name: FakeTorchvisionCLIP if name == "CLIPImageProcessor" else real(name))
    return FakeTorchvisionCLIP


@pytest.mark.parametrize("with_torchvision", [False, True])
def test_pinned_backend_does_not_depend_on_torchvision(tmp_path, request, with_torchvision):
    """Our loaders give the PIL class whichever backend AutoImageProcessor/AutoProcessor would pick."""
    from types import SimpleNamespace as NS

    from micro_model import MODEL, SYN
    from tiny_tokenizers import CORPUS
    from transformers import AutoImageProcessor, AutoProcessor, CLIPImageProcessorPil

    from llava_core.model.build import build_llava
    from llava_core.model.checkpoints import load_llava, save_llava
    from llava_core.model.tiny import build_tiny_parts

    build_tiny_parts(tmp_path, CORPUS, SYN, seed=0)
    parts = build_llava(NS(**vars(MODEL)), tmp_path)
    ckpt = save_llava(parts.model, parts.tokenizer, parts.image_processor, tmp_path / "ckpt")
    expected_auto = CLIPImageProcessorPil
    if with_torchvision:
        expected_auto = request.getfixturevalue("torchvision_installed")
    # what transformers alone would give: the backend follows the install
    assert type(AutoImageProcessor.from_pretrained(tmp_path / "tiny-clip")) is expected_auto
    assert type(AutoProcessor.from_pretrained(ckpt).image_processor) is expected_auto
    # ours: always the PIL class
    assert type(build_llava(NS(**vars(MODEL)), tmp_path).image_processor) is CLIPImageProcessorPil
    assert type(load_image_processor(tmp_path / "tiny-clip")) is CLIPImageProcessorPil
    assert type(load_llava(ckpt).image_processor) is CLIPImageProcessorPil
