"""Find training images that also appear in an evaluation set (train/eval contamination).

An image is fingerprinted twice: the sha256 of its bytes catches verbatim copies, and a 64-bit
difference hash (dHash) catches the same picture re-encoded, resized or recompressed, as happens
when datasets are scraped from the same source (COCO images in both VQAv2 train and a benchmark).
Eval dHashes go into an :class:`OverlapIndex`; each training image is then one dict lookup for
the sha and a handful for the dHash (multi-index hashing), so 1.2M training images against 50K
eval images is a matter of seconds after fingerprinting.

The default Hamming radius is 4 of 64 bits. Re-encoding and resizing moved a dHash by 0-1 bits
on photos at JPEG quality 25-95 and 20-100% size (0-2 on synthetic images), so 4 leaves a margin,
while two unrelated uniform 64-bit hashes fall within 4 bits with probability ~4e-14: ~0.002
expected false pairs over 1.2M x 50K images. At radius 10 that is ~1e-8 per pair, ~600 false
drops, and the 11 bands get so short (6 bits) that lookup degrades towards a linear scan. Real
dHashes are not uniform (flat or smoothly graded images hash to nearly all-0 or all-1 bits), so
perceptual matches are worth auditing.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from typing import Literal

from PIL import Image
from tqdm import tqdm

HASH_BITS = 64
DEFAULT_MAX_DISTANCE = 4
# A fixed filter so hashes are comparable across runs. Pillow's BILINEAR antialiases when shrinking
# (a triangle filter as wide as the scale); measured on photos re-encoded at JPEG q25-95 and resized
# to 20-100%, it moved the hash by <= 1 bit where BOX moved it by up to 7.
_RESAMPLE = Image.Resampling.BILINEAR
# JPEG ``draft`` decodes at 1/2..1/8 scale in the DCT domain; stopping at 8x the hash grid keeps the
# hash independent of which scale libjpeg picks (a coarser draft flipped up to 7 bits).
_DRAFT_OVERSAMPLE = 8

Match = Literal["exact", "perceptual"]
Fingerprint = tuple[str, int]

if hasattr(int, "bit_count"):  # Python >= 3.10
    def _popcount(x: int) -> int:
        return x.bit_count()
else:  # pragma: no cover
    def _popcount(x: int) -> int:
        return bin(x).count("1")


def hamming(a: int, b: int) -> int:
    """The number of bits in which ``a`` and ``b`` differ."""
    return _popcount(a ^ b)


def dhash(path_or_image: str | os.PathLike | Image.Image, size: int = 8) -> int:
    """The difference hash of an image: ``size * size`` bits (64 by default), row-major.

    The image is reduced to grayscale ``(size + 1) x size`` and each bit says whether a pixel is
    brighter than its left neighbour: gradients survive re-encoding and resizing, exact pixel values
    do not need to. A JPEG is decoded with ``draft`` (libjpeg's DCT scaling, up to 1/8 per side),
    which makes hashing a large photo several times cheaper than a full decode (an unloaded JPEG
    ``Image`` passed in is switched to that reduced decode).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if isinstance(path_or_image, Image.Image):
        return _dhash_image(path_or_image, size)
    with Image.open(path_or_image) as im:
        return _dhash_image(im, size)


def _dhash_image(im: Image.Image, size: int) -> int:
    if im.format == "JPEG":
        # no-op if already decoded; else decode grayscale at a reduced scale, still >= 8x the grid
        im.draft("L", ((size + 1) * _DRAFT_OVERSAMPLE, size * _DRAFT_OVERSAMPLE))
    small = im.convert("L").resize((size + 1, size), _RESAMPLE)
    px = small.tobytes()  # row-major, one byte per pixel
    w = size + 1
    bits = 0
    for y in range(size):
        row = px[y * w:(y + 1) * w]
        for x in range(size):
            bits = (bits << 1) | (row[x + 1] > row[x])
    return bits


def image_fingerprint(path: str) -> Fingerprint | None:
    """``(sha256 hex of the file's bytes, dhash)``, or None if the file is missing or not an image.

    Top-level (picklable) so a ``multiprocessing.Pool`` can map it; the file is read once.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if not data:
            return None
        with Image.open(io.BytesIO(data)) as im:
            dh = dhash(im)
    except Exception:  # missing file, not an image, truncated or malformed: PIL raises many types
        return None
    return hashlib.sha256(data).hexdigest(), dh


def fingerprint_images(paths: list[str], workers: int = 1,
                       progress: bool = True) -> Iterator[tuple[str, Fingerprint | None]]:
    """Yield ``(path, image_fingerprint(path))`` in input order, with a process pool if ``workers > 1``.

    Results stream (``Pool.imap``), so memory stays bounded however many paths there are.
    """
    bar_kw = {"total": len(paths), "desc": "fingerprinting images", "unit": "img", "disable": not progress}
    if workers <= 1 or len(paths) < 2:
        results: Iterable[Fingerprint | None] = map(image_fingerprint, paths)
        yield from tqdm(zip(paths, results, strict=True), **bar_kw)
        return
    chunksize = max(1, min(256, len(paths) // (workers * 8)))
    with multiprocessing.Pool(workers) as pool:
        results = pool.imap(image_fingerprint, paths, chunksize=chunksize)
        yield from tqdm(zip(paths, results, strict=True), **bar_kw)


def _bands(bits: int, n: int) -> list[tuple[int, int]]:
    """``(shift, mask)`` of ``n`` contiguous bit ranges covering ``bits`` bits, widths differing by <= 1."""
    out, start = [], 0
    for i in range(n):
        width = bits // n + (i < bits % n)
        out.append((start, (1 << width) - 1))
        start += width
    return out


class OverlapIndex:
    """Eval-set fingerprints, queried for exact (sha256) and perceptual (dHash) matches.

    Perceptual lookup uses multi-index hashing: the hash is cut into ``max_distance + 1`` bands;
    two hashes within ``max_distance`` bits differ in at most ``max_distance`` bands (pigeonhole),
    so they agree exactly on at least one. Each band is a dict from band value to hashes, and only
    those candidates get the full Hamming check.
    """

    def __init__(self, fingerprints: Iterable[Fingerprint] = (), *, max_distance: int = DEFAULT_MAX_DISTANCE,
                 bits: int = HASH_BITS) -> None:
        if not 0 <= max_distance < bits:
            raise ValueError(f"max_distance must be in [0, {bits}), got {max_distance}")
        self.max_distance = max_distance
        self.bits = bits
        self._shas: set[str] = set()
        self._hashes: set[int] = set()
        self._bands = _bands(bits, max_distance + 1)
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._bands]
        for sha, dh in fingerprints:
            self.add(sha, dh)

    def add(self, sha: str, dh: int) -> None:
        """Add one eval image's fingerprint."""
        self._shas.add(sha)
        if dh in self._hashes:
            return
        self._hashes.add(dh)
        for (shift, mask), table in zip(self._bands, self._tables, strict=True):
            table.setdefault((dh >> shift) & mask, []).append(dh)

    def __len__(self) -> int:
        return len(self._shas)

    def match(self, sha: str, dh: int) -> Match | None:
        """``"exact"`` if ``sha`` is an eval image's, ``"perceptual"`` if ``dh`` is within
        ``max_distance`` bits of an eval dHash, else None."""
        if sha in self._shas:
            return "exact"
        if dh in self._hashes:
            return "perceptual"
        for (shift, mask), table in zip(self._bands, self._tables, strict=True):
            for cand in table.get((dh >> shift) & mask, ()):
                if _popcount(cand ^ dh) <= self.max_distance:
                    return "perceptual"
        return None
