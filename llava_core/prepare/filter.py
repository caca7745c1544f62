"""Drop training records that would crash or skew training, and say exactly what was dropped.

The released mixtures reference images that are missing (dead OCR-VQA URLs), empty (VG_100K_2
files that unzip as 0 bytes) or broken; one such record kills a multi-hour run mid-epoch, so
they are removed up front. Malformed records are dropped and reported by file and record number
rather than failing the whole 665K-record file. Exact duplicate records are dropped so no sample
is silently up-weighted. Optionally, records whose image also appears in an evaluation set (same
bytes, or the same picture re-encoded: perceptual hash) are counted or dropped. Text-only records
(ShareGPT, no ``image`` key) are kept as they are. Every drop is counted by reason in a manifest
and listed, one line per record, in a ``.dropped.jsonl`` file beside the output.

Memory stays bounded at full scale: records are streamed from disk twice (once to list the
distinct images, once to write the kept ones), images are checked in a process pool as a stream,
and only the bad images, the duplicate keys (32 bytes a record) and the distinct image names are
held in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from llava_core.data.formats import iter_llava_records
from llava_core.io import FormatError, atomic_write, sha256_file, write_json
from llava_core.prepare.overlap import image_fingerprint

MISSING, EMPTY, TRUNCATED, CORRUPT, TOO_LARGE, DUPLICATE = (
    "missing_image", "empty_image", "truncated_image", "corrupt_image", "too_large_image", "duplicate")
MALFORMED = "malformed_record"
EVAL_EXACT, EVAL_PERCEPTUAL = "eval_overlap_exact", "eval_overlap_perceptual"
OVERLAP_MODES = ("off", "report", "drop")
MAX_EXAMPLES = 20
# Formats whose verify() checks the whole stream (PNG: every chunk's CRC up to IEND). For the rest
# (JPEG, GIF, WebP, BMP, ...) verify() only parses the header, so the pixels must be decoded.
_STRONG_VERIFY = {"PNG"}


def check_image(path: str) -> str | None:
    """The reason ``path`` is unusable as a training image, or None if it decodes fully.

    Reads only what proves validity: PNG by its chunk CRCs, JPEG by a DCT-scaled (1/8) decode,
    which still walks every entropy-coded block, so a cut-off file is caught.
    """
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


def _inspect(job: tuple[str, bool]) -> tuple[str | None, tuple[str, int] | None]:
    """(reason, fingerprint) of one image; the fingerprint only when asked and the image is good."""
    path, fingerprint = job
    why = check_image(path)
    if why is not None or not fingerprint:
        return why, None
    return None, image_fingerprint(path)


def _init_worker() -> None:
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # training code may set it; the filter must see damage


def _inspect_images(paths: list[str], workers: int, fingerprint: bool, progress: bool
                    ) -> Iterator[tuple[str | None, tuple[str, int] | None]]:
    """Inspect images in input order; a Pool streams results (imap) so memory stays bounded."""
    bar_kw = {"total": len(paths), "desc": "checking images", "unit": "img", "disable": not progress}
    jobs = ((p, fingerprint) for p in paths)
    if workers <= 1 or len(paths) < 2:
        yield from tqdm(map(_inspect, jobs), **bar_kw)
        return
    chunksize = max(1, min(256, len(paths) // (workers * 8)))
    with multiprocessing.Pool(workers, initializer=_init_worker) as pool:
        yield from tqdm(pool.imap(_inspect, jobs, chunksize=chunksize), **bar_kw)


def _dup_key(rec: dict) -> bytes:
    key = json.dumps([rec.get("image"), rec["conversations"]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(key.encode()).digest()


def _record_id(rec: dict | None, index: int) -> str:
    return str(rec["id"]) if isinstance(rec, dict) and "id" in rec else f"#{index}"


def filter_records(records_path: Path, image_root: Path, out_path: Path, *, workers: int = 1,
                   dedupe: bool = True, check_images: bool = True,
                   eval_overlap: Callable[[str, int], str | None] | None = None, overlap_mode: str = "off",
                   index_path: Path | None = None, progress: bool = True) -> dict:
    """Write the usable records of ``records_path`` to ``out_path``; return a manifest of drops.

    Each distinct image file is checked once, however many records share it (VQA sources ask
    several questions about one COCO image). Among exact duplicates the first one is kept.
    ``eval_overlap(sha256, dhash)`` names the kind of match ("exact" or "perceptual") of a training
    image with the evaluation images, or None; ``overlap_mode`` "report" counts such records,
    "drop" also removes them. Every dropped record is listed in ``<out>.dropped.jsonl``.
    With ``index_path``, the kept records are also written there as a training index
    (``llava_core/data/index.py``), in the same pass and from the same JSON text.
    """
    records_path, image_root, out_path = Path(records_path), Path(image_root), Path(out_path)
    if overlap_mode not in OVERLAP_MODES:
        raise ValueError(f"overlap_mode must be one of {OVERLAP_MODES}, got {overlap_mode!r}")
    fingerprint = overlap_mode != "off" and eval_overlap is not None

    # Pass 1: the distinct images, in first-seen order (a dict keeps order and dedupes).
    images: dict[str, None] = {}
    n_records = 0
    for _, rec in tqdm(iter_llava_records(records_path), desc=f"reading {records_path.name}", unit="rec",
                       disable=not progress):
        n_records += 1
        if isinstance(rec, dict) and "image" in rec:
            images[rec["image"]] = None

    bad: dict[str, str] = {}
    overlap: dict[str, str] = {}
    if check_images or fingerprint:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            paths = [str(image_root / img) for img in images]
            for img, (why, fp) in zip(images, _inspect_images(paths, workers, fingerprint, progress), strict=True):
                if why is not None and check_images:
                    bad[img] = why
                if fp is not None and eval_overlap is not None and (kind := eval_overlap(*fp)):
                    overlap[img] = EVAL_EXACT if kind == "exact" else EVAL_PERCEPTUAL
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous
    n_images = len(images)
    del images

    # Pass 2: stream again, writing kept records and listing every drop.
    reasons: Counter[str] = Counter()
    overlap_counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    malformed: list[str] = []
    seen: set[bytes] = set()
    kept = 0
    dropped_path = out_path.with_name(out_path.stem + ".dropped.jsonl")
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_write(out_path))
        drops = stack.enter_context(atomic_write(dropped_path))
        index = None
        if index_path is not None:
            from llava_core.data.index import TrainingIndexWriter

            index = stack.enter_context(TrainingIndexWriter(index_path, progress=progress))
        out.write("[")
        for i, rec in tqdm(iter_llava_records(records_path), total=n_records, desc=f"writing {out_path.name}",
                           unit="rec", disable=not progress):
            detail = None
            if isinstance(rec, FormatError):
                why, detail = MALFORMED, rec.message
                if len(malformed) < MAX_EXAMPLES:
                    malformed.append(str(rec))
                rec = None
            else:
                image = rec.get("image")
                why = bad.get(image) if image is not None else None
                if why is None and image in overlap:
                    overlap_counts[overlap[image]] += 1
                    if overlap_mode == "drop":
                        why = overlap[image]
                if why is None and dedupe:
                    key = _dup_key(rec)
                    why = DUPLICATE if key in seen else None
                    seen.add(key)
            if why is None:
                text = json.dumps(rec, ensure_ascii=False)
                out.write((", " if kept else "") + text)
                if index is not None:
                    index.add(rec, text)
                kept += 1
                continue
            reasons[why] += 1
            ids = examples.setdefault(why, [])
            if len(ids) < MAX_EXAMPLES:
                ids.append(_record_id(rec, i))
            row = {"record": i, "id": _record_id(rec, i), "reason": why}
            if rec is not None and "image" in rec:
                row["image"] = rec["image"]
            if detail:
                row["detail"] = detail
            drops.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.write("]\n")

    return {
        "input": str(records_path),
        "output": str(out_path),
        "records": n_records,
        "kept": kept,
        "dropped": sum(reasons.values()),
        "reasons": dict(sorted(reasons.items())),
        "dropped_examples": dict(sorted(examples.items())),
        "dropped_list": str(dropped_path),
        "malformed_examples": malformed,
        "images": {"distinct": n_images, "unusable": len(bad)},
        "eval_overlap": {"mode": overlap_mode, **dict(sorted(overlap_counts.items()))},
        "input_sha256": sha256_file(records_path),
        "output_sha256": sha256_file(out_path),
    }


def write_manifest(path: Path, manifests: dict[str, dict]) -> None:
    """Write per-dataset filter manifests (``{dataset: manifest}``) as one JSON file, atomically."""
    write_json(path, {name: manifests[name] for name in sorted(manifests)})
