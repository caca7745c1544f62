"""Train/eval image overlap: sha256 for copies, dHash + multi-index hashing for re-encoded copies."""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from llava_core.prepare.overlap import (
    OverlapIndex,
    dhash,
    fingerprint_images,
    hamming,
    image_fingerprint,
)


def scene(seed: int, w: int = 480, h: int = 360) -> Image.Image:
    """A photo-like picture: smooth random colour fields (a coarse grid upsampled) plus sensor noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = smooth + rng.integers(-12, 13, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def save(im: Image.Image, path: Path, **kw) -> str:
    im.save(path, **kw)
    return str(path)


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, str]:
    """Eval originals, a byte copy, re-encoded/resized copies, unrelated images and unreadable files."""
    a, b = scene(1), scene(2)
    files = {
        "a.png": save(a, tmp_path / "a.png"),
        "b.jpg": save(b, tmp_path / "b.jpg", quality=92),
        # the same pictures, 80% size, recompressed at another quality (and another format for a)
        "a_small.jpg": save(a.resize((384, 288), Image.Resampling.LANCZOS), tmp_path / "a_small.jpg", quality=40),
        "b_small.jpg": save(b.resize((384, 288), Image.Resampling.LANCZOS), tmp_path / "b_small.jpg", quality=60),
        "other.jpg": save(scene(3), tmp_path / "other.jpg", quality=90),
        "noise.png": save(Image.fromarray(np.random.default_rng(4).integers(0, 256, (200, 300, 3), dtype=np.uint8)),
                          tmp_path / "noise.png"),
    }
    shutil.copyfile(files["a.png"], tmp_path / "a_copy.png")
    files["a_copy.png"] = str(tmp_path / "a_copy.png")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    files["text.jpg"], files["empty.png"] = str(tmp_path / "text.jpg"), str(tmp_path / "empty.png")
    files["missing.jpg"] = str(tmp_path / "missing.jpg")
    return files


def test_copies_match_exactly_reencodings_perceptually_others_not(pictures: dict[str, str]) -> None:
    fp = {name: image_fingerprint(path) for name, path in pictures.items()}
    index = OverlapIndex([fp["a.png"], fp["b.jpg"]])
    assert len(index) == 2
    assert index.match(*fp["a_copy.png"]) == "exact"
    assert fp["a_small.jpg"][0] != fp["a.png"][0]
    assert hamming(fp["a_small.jpg"][1], fp["a.png"][1]) <= 2  # well inside the radius of 4
    assert hamming(fp["b_small.jpg"][1], fp["b.jpg"][1]) <= 2
    assert index.match(*fp["a_small.jpg"]) == "perceptual"
    assert index.match(*fp["b_small.jpg"]) == "perceptual"
    for name in ("other.jpg", "noise.png"):
        assert index.match(*fp[name]) is None
        assert min(hamming(fp[name][1], fp[e][1]) for e in ("a.png", "b.jpg")) > 10


def test_unrelated_pictures_hash_far_apart() -> None:
    hashes = [dhash(scene(seed, 160, 120)) for seed in range(20)]
    assert len(set(hashes)) == 20
    assert min(hamming(x, y) for i, x in enumerate(hashes) for y in hashes[i + 1:]) > 8
    index = OverlapIndex((f"sha{i}", h) for i, h in enumerate(hashes[:10]))
    assert all(index.match("new", h) is None for h in hashes[10:])
    assert all(index.match("new", h) == "perceptual" for h in hashes[:10])


def test_dhash_is_64_bits_and_reads_paths_and_images(pictures: dict[str, str]) -> None:
    h = dhash(pictures["b.jpg"])
    assert 0 <= h < 1 << 64 and h.bit_count() > 8  # a real picture is not a degenerate all-0 hash
    with Image.open(pictures["b.jpg"]) as im:
        assert dhash(im) == h
    assert dhash(Path(pictures["a.png"])) == image_fingerprint(pictures["a.png"])[1]
    assert dhash(pictures["a.png"], size=16) < 1 << 256
    # a left-to-right brightening gradient: every pixel is brighter than its left neighbour
    ramp = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1)))
    assert dhash(ramp) == (1 << 64) - 1
    assert dhash(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) == 0


def test_jpeg_is_decoded_in_draft_mode(pictures: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[tuple] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        requested.append((mode, size))
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    with Image.open(pictures["b.jpg"]) as im:
        dhash(im)
        assert im.size == (120, 90)  # 480x360 decoded at 1/4 scale, the coarsest >= 72x64
    assert requested == [("L", (72, 64))]
    assert image_fingerprint(pictures["other.jpg"]) is not None and len(requested) == 2


def test_unreadable_files_have_no_fingerprint(pictures: dict[str, str]) -> None:
    for name in ("text.jpg", "empty.png", "missing.jpg"):
        assert image_fingerprint(pictures[name]) is None
    with open(pictures["b.jpg"], "rb") as fh:
        data = fh.read()
    truncated = Path(pictures["b.jpg"]).with_name("truncated.jpg")
    truncated.write_bytes(data[: len(data) // 3])
    assert image_fingerprint(str(truncated)) is None
    sha, _ = image_fingerprint(pictures["a.png"])
    assert len(sha) == 64 and int(sha, 16) >= 0


def test_pool_gives_the_same_results_in_order(pictures: dict[str, str]) -> None:
    paths = list(pictures.values()) * 3
    serial = list(fingerprint_images(paths, workers=1, progress=False))
    pooled = list(fingerprint_images(paths, workers=2, progress=False))
    assert [p for p, _ in serial] == paths
    assert pooled == serial
    assert sum(fp is None for _, fp in serial) == 9  # three unreadable files, three times


def flip_bits(h: int, positions: list[int]) -> int:
    for p in positions:
        h ^= 1 << p
    return h


@pytest.mark.parametrize("max_distance", [0, 1, 4, 7])
def test_banded_lookup_finds_exactly_what_brute_force_finds(max_distance: int) -> None:
    """2000 random eval hashes; queries are random hashes plus planted near-duplicates at every
    distance up to max_distance + 2, with flips either bunched in one band or spread over all bands
    (the pigeonhole worst case: all bands but one differ)."""
    rng = random.Random(max_distance)
    evals = [rng.getrandbits(64) for _ in range(2000)]
    index = OverlapIndex(max_distance=max_distance)
    for i, h in enumerate(evals):
        index.add(f"e{i}", h)
    n_bands = max_distance + 1
    queries = [rng.getrandbits(64) for _ in range(300)]
    for k in range(max_distance + 3):
        for base in rng.sample(evals, 40):
            queries.append(flip_bits(base, rng.sample(range(64), k)))  # scattered
            # one flip per band (bands are ~64/n_bands bits), then a second round
            queries.append(flip_bits(base, [(j % n_bands) * 64 // n_bands + 1 + j // n_bands for j in range(k)]))
            queries.append(flip_bits(base, list(range(k))))  # bunched in the low band
    found = 0
    for q in queries:
        truth = min(hamming(q, e) for e in evals) <= max_distance
        assert (index.match("query", q) == "perceptual") == truth, (hex(q), max_distance)
        found += truth
    assert found >= 3 * 40 * (max_distance + 1)  # the planted pairs within range were all there


def test_exact_sha_wins_and_parameters_are_checked() -> None:
    assert OverlapIndex().max_distance == 4
    index = OverlapIndex([("aa", 0), ("bb", 0)], max_distance=2)
    assert len(index) == 2
    assert index.match("bb", (1 << 64) - 1) == "exact"
    assert index.match("cc", 0b11) == "perceptual"
    assert index.match("cc", 0b111) is None
    with pytest.raises(ValueError):
        OverlapIndex(max_distance=64)
    with pytest.raises(ValueError):
        OverlapIndex(max_distance=-1)
    buf = io.BytesIO()
    scene(0, 64, 48).save(buf, "PNG")
    buf.seek(0)
    with pytest.raises(ValueError):
        dhash(buf, size=0)
