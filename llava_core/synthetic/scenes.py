"""Scenes of the tiny world and their rendering: one large shape in one of 8 colours on a plain
muted background, with mild colour jitter and pixel noise; plus the random streams, the words
and the small helpers that every part of the world shares."""

from __future__ import annotations

import base64
import hashlib
import io
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from llava_core.evalkit import LETTER_SUFFIX, SHORT_ANSWER_SUFFIX

#: The prompt suffixes of the official short-answer and multiple-choice questions.
SHORT_ANSWER, LETTER_ANSWER = SHORT_ANSWER_SUFFIX, LETTER_SUFFIX

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (240, 220, 30),
    "purple": (140, 40, 180), "orange": (250, 140, 20), "white": (250, 250, 250), "black": (10, 10, 10),
}
# Muted backgrounds, far from every shape colour (so the shape is always visible).
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128), "tan": (190, 170, 135), "brown": (110, 75, 50), "teal": (40, 110, 115),
}
SHAPES = ("circle", "square", "triangle", "cross")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")


@dataclass(frozen=True)
class Scene:
    """One image's content; positions and size are fractions of the image side."""

    shape: str
    color: str
    background: str
    cx: float
    cy: float
    size: float

    @property
    def where(self) -> str:
        """A phrase for the shape's position, e.g. ``"in the top left corner"``."""
        h = "left" if self.cx < 0.42 else "right" if self.cx > 0.58 else ""
        v = "top" if self.cy < 0.42 else "bottom" if self.cy > 0.58 else ""
        if h and v:
            return f"in the {v} {h} corner"
        if h:
            return f"on the {h} side"
        return f"at the {v}" if v else "in the center"

    @property
    def blank(self) -> bool:
        """Nothing is drawn: an image with only its background (VizWiz's unanswerable ones)."""
        return self.size == 0

    @property
    def size_word(self) -> str:
        """``"large"`` or ``"medium-sized"``."""
        return "large" if self.size >= 0.75 else "medium-sized"

    def attribute(self, kind: str) -> tuple[str, list[str]]:
        """The scene's ``kind`` (``"color"``, ``"shape"`` or ``"background"``) and every value it could take."""
        values = {"color": COLORS, "shape": SHAPES, "background": BACKGROUNDS}[kind]
        return getattr(self, kind), list(values)


def streams(seed: int, name: str) -> tuple[random.Random, np.random.Generator]:
    """Independent Python and numpy RNGs for one named stream of one seed."""
    h = int.from_bytes(hashlib.sha256(f"llava_core.synthetic:{seed}:{name}".encode()).digest()[:8], "big")
    return random.Random(h), np.random.default_rng(h)


def sample_scene(rng: random.Random, color: str | None = None, shape: str | None = None) -> Scene:
    """Draw a random scene (optionally with a fixed colour or shape)."""
    shape = shape or rng.choice(SHAPES)
    color = color or rng.choice(list(COLORS))
    background = rng.choice(list(BACKGROUNDS))
    size = rng.uniform(0.6, 0.9)  # large shapes: a frozen random vision tower must still see them
    cx, cy = rng.uniform(size / 2, 1 - size / 2), rng.uniform(size / 2, 1 - size / 2)
    return Scene(shape, color, background, round(cx, 4), round(cy, 4), round(size, 4))


def render(scene: Scene, image_size: int, nrng: np.random.Generator) -> np.ndarray:
    """Draw ``scene`` as an ``(image_size, image_size, 3)`` uint8 array with jitter and noise."""
    c = (np.arange(image_size) + 0.5) / image_size
    dx, dy = c[None, :] - scene.cx, c[:, None] - scene.cy
    r = scene.size / 2
    if scene.shape == "circle":
        mask = dx**2 + dy**2 <= r**2
    elif scene.shape == "square":
        mask = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    elif scene.shape == "triangle":  # apex up, base at the bottom
        mask = (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    elif scene.shape == "cross":
        arm = r / 2
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    else:
        raise ValueError(f"unknown shape {scene.shape!r}")
    bg = np.asarray(BACKGROUNDS[scene.background], np.float32) + nrng.integers(-8, 9, 3)
    fg = np.asarray(COLORS[scene.color], np.float32) + nrng.integers(-12, 13, 3)
    img = np.where(mask[..., None], fg, bg)
    img += 6.0 * nrng.standard_normal((image_size, image_size, 3), dtype=np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class Stream:
    """One named random stream of one seed: draws scenes and renders their images at ``image_size``."""

    def __init__(self, seed: int, name: str, image_size: int):
        self.rng, self.nrng = streams(seed, name)
        self.image_size = image_size

    def scene(self, color: str | None = None, shape: str | None = None, blank: bool = False) -> Scene:
        s = sample_scene(self.rng, color=color, shape=shape)
        return replace(s, size=0.0) if blank else s

    def draw(self, scene: Scene) -> np.ndarray:
        return render(scene, self.image_size, self.nrng)

    def save(self, scene: Scene, path: Path) -> None:
        save_image(self.draw(scene), path)


def save_image(arr: np.ndarray, path: Path) -> None:
    """Save as JPEG quality 95, or PNG when the name ends in ``.png``."""
    img = Image.fromarray(arr, "RGB")
    if path.suffix == ".png":
        img.save(path, format="PNG")
    else:
        img.save(path, format="JPEG", quality=95)


def jpeg_b64(arr: np.ndarray) -> str:
    """JPEG quality 95, base64 (MMBench's TSV cells)."""
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=95)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def article(word: str) -> str:
    """``word`` with its indefinite article: ``"a red"``, ``"an orange"``."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def option_lines(choices: list[str]) -> str:
    """``"A. x\\nB. y..."``."""
    return "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))


def distractor(rng: random.Random, s: Scene, mode: str) -> tuple[str, str]:
    """A (colour, shape) pair absent from ``s``; ``mode`` is "color", "shape", "both" or "any"."""
    other_c = [c for c in COLORS if c != s.color]
    other_s = [x for x in SHAPES if x != s.shape]
    if mode == "any":
        return rng.choice([(c, x) for c in COLORS for x in SHAPES if (c, x) != (s.color, s.shape)])
    color = rng.choice(other_c) if mode in ("color", "both") else s.color
    shape = rng.choice(other_s) if mode in ("shape", "both") else s.shape
    return color, shape


def unique_ints(rng: random.Random, n: int, lo: int, hi: int) -> list[int]:
    return rng.sample(range(lo, hi), n)


def balanced(rng: random.Random, values: list[str], n: int) -> list[str]:
    """``n`` values cycling through ``values`` evenly, shuffled."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out
