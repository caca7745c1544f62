"""Drop training records that would crash or skew training, and say exactly what was dropped.

The released mixtures reference images that are missing (dead OCR-VQA URLs), empty (VG_100K_2
files that unzip as 0 bytes) or broken; one such record kills a multi-hour run mid-epoch, so
they are removed up front. Exact duplicate records are dropped so no sample is silently
up-weighted. Text-only records (ShareGPT, no ``image`` key) are kept as they are. Every drop is
counted by reason in a manifest, with example ids, so the kept set is auditable.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from llava_core.data.formats import read_llava_records, write_llava_records
from llava_core.io import write_json

MISSING, EMPTY, TRUNCATED, CORRUPT, TOO_LARGE, DUPLICATE = (
    "missing_image", "empty_image", "truncated_image", "corrupt_image", "too_large_image", "duplicate")
MAX_EXAMPLES = 20
# Formats whose verify() checks the whole stream (PNG: every chunk's CRC up to IEND). For the rest
# (JPEG, GIF, WebP, BMP, ...) verify() only parses the header, so the pixels must be decoded.
_STRONG_VERIFY = {"PNG"}


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def check_image(path: str) -> str | None:
    """The reason ``path`` is unusable as a training image, or None if it decodes fully."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return MISSING
    if not os.path.isfile(path):
        return MISSING
    if size == 0:
        return EMPTY
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": harmless for training
            with Image.open(path) as im:
                if im.format in _STRONG_VERIFY:
                    im.verify()
                else:
                    if im.format == "JPEG":
                        im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))  # DCT-scaled decode
                    im.load()
    except Image.DecompressionBombError:
        return TOO_LARGE
    except UnidentifiedImageError:
        return CORRUPT
    except EOFError:
        return TRUNCATED
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, struct.error... on bad data
        return TRUNCATED if "truncated" in str(e).lower() else CORRUPT
    return None


def _init_worker() -> None:
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # training code may set it; the filter must see damage


def _check_images(paths: list[str], workers: int) -> Iterator[str | None]:
    """Check reasons in input order; a Pool streams results (imap) so memory stays bounded."""
    bar_kw = {"total": len(paths), "desc": "checking images", "unit": "img"}
    if workers <= 1 or len(paths) < 2:
        yield from tqdm((check_image(p) for p in paths), **bar_kw)
        return
    chunksize = max(1, min(256, len(paths) // (workers * 8)))
    with multiprocessing.Pool(workers, initializer=_init_worker) as pool:
        yield from tqdm(pool.imap(check_image, paths, chunksize=chunksize), **bar_kw)


def _dup_key(rec: dict) -> str:
    return json.dumps([rec.get("image"), rec["conversations"]], sort_keys=True, ensure_ascii=False)


def _record_id(rec: dict, index: int) -> str:
    return str(rec["id"]) if "id" in rec else f"#{index}"


def filter_records(records_path: Path, image_root: Path, out_path: Path, *, workers: int = 1,
                   dedupe: bool = True, check_images: bool = True) -> dict:
    """Write the usable records of ``records_path`` to ``out_path``; return a manifest of drops.

    Each distinct image file is checked once, however many records share it (VQA sources ask
    several questions about one COCO image). Among exact duplicates the first one is kept.
    """
    records_path, image_root, out_path = Path(records_path), Path(image_root), Path(out_path)
    records = read_llava_records(records_path)

    bad: dict[str, str] = {}
    if check_images:
        images = list(dict.fromkeys(r["image"] for r in records if "image" in r))
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            paths = [str(image_root / img) for img in images]
            bad = {img: why for img, why in zip(images, _check_images(paths, workers), strict=True) if why}
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous

    kept: list[dict] = []
    reasons: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    seen: set[bytes] = set()
    for i, rec in enumerate(records):
        why = bad.get(rec["image"]) if "image" in rec else None
        if why is None and dedupe:
            key = hashlib.sha256(_dup_key(rec).encode()).digest()
            why = DUPLICATE if key in seen else None
            seen.add(key)
        if why is None:
            kept.append(rec)
            continue
        reasons[why] += 1
        ids = examples.setdefault(why, [])
        if len(ids) < MAX_EXAMPLES:
            ids.append(_record_id(rec, i))

    write_llava_records(out_path, kept)
    return {
        "input": str(records_path),
        "output": str(out_path),
        "kept": len(kept),
        "dropped": sum(reasons.values()),
        "reasons": dict(sorted(reasons.items())),
        "dropped_examples": dict(sorted(examples.items())),
        "input_sha256": _file_sha256(records_path),
        "output_sha256": _file_sha256(out_path),
    }


def write_manifest(path: Path, manifests: dict[str, dict]) -> None:
    """Write per-dataset filter manifests (``{dataset: manifest}``) as one JSON file, atomically."""
    write_json(path, {name: manifests[name] for name in sorted(manifests)})

