"""Crawl per-image URLs (OCR-VQA's book covers) into a folder of real JPEGs, resumably.

LLaVA-1.5's stage-2 mixture references ``ocr_vqa/images/<id>.jpg``, but OCR-VQA ships only a
``dataset.json`` of Amazon image URLs, and its official crawler is single-threaded, keeps the
extension of the URL and stores whatever bytes come back. This module instead:

* fetches in parallel, retrying transient failures (dropped connections, timeouts, 408/425/429,
  5xx) with exponential backoff, while 403/404/410 fail at once: dead covers stay dead;
* stores every image under its requested name as a real JPEG: JPEG bytes are kept verbatim,
  GIF/PNG/WebP/... are converted (first frame, transparency composited on white), and bytes that
  do not decode fully (empty body, HTML error page, truncated file) are failures, never files;
* records each stored file's sha256 in a crawl lock, so a rerun verifies instead of fetching
  (zero requests when everything is present) and refetches exactly the files that changed;
* never raises for a remote failure: failures are listed in a JSON report, and the training
  records that reference them are dropped later by :mod:`llava_core.prepare.filter`. Local
  problems (a full disk, an unwritable folder) do raise, after the lock has been written.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import random
import time
import urllib.error
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from llava_core.io import FormatError, atomic_write, read_json, write_json

BACKOFF_S = 1.0  # wait before the first retry; doubles after each failure (tests shrink it)
MAX_BYTES = 64 << 20  # a cover is ~10-100 KB; anything this big is not what we asked for
JPEG_QUALITY = 95
MIN_SIDE = 8  # pixels: smaller images are placeholders (a real cover is ~100-500 px a side)
USER_AGENT = "Mozilla/5.0 (compatible; llava-core-crawl/0.1)"  # some CDNs refuse urllib's default
_TRANSIENT_HTTP = {408, 425, 429}
_LOCK_HINT = "delete the lock file: files already present are then re-checked by decoding them"


class _Failure(Exception):
    """One image could not be fetched or decoded; ``transient`` failures earn another attempt."""

    def __init__(self, reason: str, detail: str = "", transient: bool = False):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.transient = reason, detail, transient


@dataclass
class _Outcome:
    status: str  # "fetched" | "present" | "failed"
    entry: dict | None = None  # lock entry for a stored file
    converted: str | None = None  # source format when the stored JPEG was converted this run
    failure: dict | None = None


# ----------------------------------------------------------------------------------- decoding


def _decode(data: bytes) -> Image.Image:
    """The fully loaded image, or a ``_Failure`` if the bytes are not a complete image."""
    if not data:
        raise _Failure("empty", "0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": harmless for training
            with Image.open(io.BytesIO(data)) as im:
                if im.format == "PNG":
                    im.verify()  # checks every chunk's CRC; load() alone accepts a missing IEND
            im = Image.open(io.BytesIO(data))
            im.load()  # decodes the pixels: a truncated stream raises here
    except Image.DecompressionBombError as e:
        raise _Failure("too large", str(e)) from None
    except UnidentifiedImageError:
        raise _Failure("corrupt", f"not an image (starts with {data[:16]!r})") from None
    except Exception as e:  # Pillow raises OSError, SyntaxError, EOFError, struct.error... on bad data
        raise _Failure("corrupt", f"{type(e).__name__}: {e}") from None
    if min(im.size) < MIN_SIDE:  # Amazon answers some dead covers with a 1x1 GIF instead of a 404
        size = im.size
        im.close()
        raise _Failure("placeholder", f"{size[0]}x{size[1]} pixels: a placeholder, not a cover")
    return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten any mode to RGB; transparent pixels become white (what a browser shows)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit/float grey: scale, don't clip
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    transparent = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not transparent:
        return im.convert("RGB")
    rgba = im.convert("RGBA")
    flat = Image.new("RGB", im.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _as_jpeg(data: bytes) -> tuple[bytes, str]:
    """(JPEG bytes to store, source format): JPEG verbatim, anything else re-encoded."""
    im = _decode(data)
    try:
        fmt = im.format or "unknown"
        if fmt == "JPEG":
            return data, fmt
        im.seek(0)  # first frame of an animated GIF/WebP
        out = io.BytesIO()
        _to_rgb(im).save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue(), fmt
    finally:
        im.close()


# ------------------------------------------------------------------------------------- fetching


def _http_get(url: str, timeout: float) -> bytes:
    """One attempt; every failure becomes a ``_Failure`` saying whether a retry may help."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        e.close()
        transient = e.code in _TRANSIENT_HTTP or e.code >= 500
        raise _Failure(f"http {e.code}", str(e.reason), transient) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _Failure("timeout", f"no answer within {timeout:g} s", True) from None
        if isinstance(e.reason, FileNotFoundError):  # file:// URL
            raise _Failure("not found", str(e.reason)) from None
        raise _Failure("connection error", f"{type(e.reason).__name__}: {e.reason}", True) from None
    except TimeoutError:  # raised directly when the body stalls after the headers
        raise _Failure("timeout", f"no data within {timeout:g} s", True) from None
    except http.client.IncompleteRead as e:
        raise _Failure("incomplete body", f"got {len(e.partial)} bytes, {e.expected} missing", True) from None
    except (http.client.HTTPException, OSError) as e:
        raise _Failure("connection error", f"{type(e).__name__}: {e}", True) from None
    if len(data) > MAX_BYTES:
        raise _Failure("too large", f"more than {MAX_BYTES} bytes")
    return data


def _fetch(url: str, tries: int, timeout: float) -> bytes:
    """The body of ``url``, retrying transient failures with exponential backoff and jitter."""
    for attempt in range(tries):
        if attempt:  # jitter keeps many workers from hammering a throttling server in lockstep
            time.sleep(BACKOFF_S * 2 ** (attempt - 1) * (1 + 0.5 * random.random()))
        try:
            return _http_get(url, timeout)
        except _Failure as f:
            if not f.transient or attempt == tries - 1:
                if f.transient and tries > 1:
                    f.detail = f"{f.detail} (after {tries} tries)"
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------- one image


def _entry(url: str, data: bytes, fmt: str) -> dict:
    return {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "source_format": fmt}


def _store(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:  # a killed crawl never leaves a half-written image
        fh.write(data)


def _ensure(name: str, url: str, path: Path, locked: dict | None, tries: int, timeout: float) -> _Outcome:
    """Make ``path`` a verified JPEG: keep what is there when it checks out, else fetch it."""
    if path.is_file():
        if locked is not None:
            if path.stat().st_size == locked["size"]:
                if hashlib.sha256(path.read_bytes()).hexdigest() == locked["sha256"]:
                    return _Outcome("present", entry=locked)
            # bytes differ from what we stored: fall through and fetch again
        else:  # crawled before this lock existed (e.g. by the official script): keep if it decodes
            data = path.read_bytes()
            try:
                jpeg, fmt = _as_jpeg(data)
            except _Failure:
                pass  # broken: fetch again
            else:
                if fmt != "JPEG":  # e.g. a GIF saved under .jpg by the official crawler
                    _store(path, jpeg)
                return _Outcome("present", entry=_entry(url, jpeg, fmt), converted=None if fmt == "JPEG" else fmt)
    try:
        jpeg, fmt = _as_jpeg(_fetch(url, tries, timeout))
    except _Failure as f:
        return _Outcome("failed", failure={"file": name, "url": url, "reason": f.reason, "detail": f.detail})
    _store(path, jpeg)
    return _Outcome("fetched", entry=_entry(url, jpeg, fmt), converted=None if fmt == "JPEG" else fmt)


# ---------------------------------------------------------------------------------------- lock


def read_crawl_lock(lock_path: Path) -> dict:
    """The crawl lock as ``{"images": {file_name: entry}}``; empty if the file does not exist yet."""
    lock_path = Path(lock_path)
    if not lock_path.exists():
        return {"images": {}}
    data = read_json(lock_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise FormatError(lock_path, None, 'expected {"images": {file_name: {url, sha256, size, source_format}}}',
                          _LOCK_HINT)
    for name, entry in data["images"].items():
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("size"), int)):
            raise FormatError(lock_path, None, f"lock entry {name!r} has no sha256 or size", _LOCK_HINT)
    return data


def _write_lock(lock_path: Path, old: dict, outcomes: dict[str, _Outcome]) -> None:
    # Entries of failed or unrequested images are kept: the lock is a record of verified bytes,
    # and every use re-verifies the file on disk against it anyway.
    merged = {**old["images"], **{n: o.entry for n, o in outcomes.items() if o.entry is not None}}
    new = {"images": {n: merged[n] for n in sorted(merged)}}
    if new != old or not lock_path.exists():
        write_json(lock_path, new)


# ------------------------------------------------------------------------------------ public API


def _check_name(name: str) -> None:
    # Names come from downloaded metadata: refuse anything that could leave out_dir or collide
    # with atomic_write's hidden temporary files.
    if (not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name
            or "\0" in name):
        raise ValueError(f"unsafe image file name {name!r}: expected a plain name such as '782118577.jpg'")


def crawl_images(items: list[tuple[str, str]], out_dir: Path, lock_path: Path, report_path: Path, *,
                 workers: int = 16, tries: int = 3, timeout: float = 30.0, progress: bool = True,
                 url_for: Callable[[str, str], str] | None = None) -> dict:
    """Fetch ``[(file_name, url)]`` into ``out_dir`` as JPEGs; write the lock and a report; return the report.

    ``url_for(file_name, url)`` may rewrite the URL actually fetched (e.g. to a mirror). Files
    already present that match the lock (or, without a lock entry, that decode fully) are kept
    without any request. Remote failures never raise: they are listed in the report. The lock is
    written even when the crawl is interrupted, so a rerun resumes.
    """
    if tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    out_dir, lock_path, report_path = Path(out_dir), Path(lock_path), Path(report_path)
    wanted: dict[str, str] = {}
    for name, url in items:
        _check_name(name)
        if wanted.setdefault(name, url) != url:
            raise ValueError(f"image {name!r} is listed with two URLs: {wanted[name]!r} and {url!r}")
    lock = read_crawl_lock(lock_path)
    locked: dict[str, Any] = lock["images"]
    out_dir.mkdir(parents=True, exist_ok=True)

    outcomes: dict[str, _Outcome] = {}
    futures: dict[Future[_Outcome], str] = {}
    failed = 0
    truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # training code may set it; the crawl must see damage
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="crawl")
    try:
        for name, url in wanted.items():
            fetch_url = url_for(name, url) if url_for else url
            futures[pool.submit(_ensure, name, fetch_url, out_dir / name, locked.get(name), tries, timeout)] = name
        with tqdm(total=len(futures), desc="crawling images", unit="img", disable=not progress) as bar:
            for fut in as_completed(futures):
                outcome = outcomes[futures[fut]] = fut.result()
                if outcome.status == "failed":
                    failed += 1
                    bar.set_postfix(failed=failed, refresh=False)
                bar.update(1)
    finally:
        # On an interrupt, queued images are dropped but running ones finish, and what they
        # stored still reaches the lock.
        pool.shutdown(wait=True, cancel_futures=True)
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_flag
        for fut, name in futures.items():
            if name not in outcomes and fut.done() and not fut.cancelled() and fut.exception() is None:
                outcomes[name] = fut.result()
        _write_lock(lock_path, lock, outcomes)

    statuses = Counter(o.status for o in outcomes.values())
    converted = Counter(o.converted for o in outcomes.values() if o.converted)
    failures = sorted((o.failure for o in outcomes.values() if o.failure), key=lambda f: f["file"])
    report = {
        "requested": len(wanted),
        "fetched": statuses["fetched"],
        "already_present": statuses["present"],
        "converted": {fmt: converted[fmt] for fmt in sorted(converted)},
        "failed": failures,
        "failed_count": len(failures),
    }
    write_json(report_path, report)
    return report


def ocrvqa_items(dataset_json: Path, needed: set[str] | None = None,
                 mirror: str | None = None) -> list[tuple[str, str]]:
    """``[(f"{id}.jpg", url)]`` from OCR-VQA's ``dataset.json``, in file order.

    ``needed`` (file names such as ``"782118577.jpg"``) keeps only those images; names it holds
    that the dataset lacks are ignored, so compare against the result to find them. ``mirror``
    (a base URL) replaces each ``imageURL`` by ``<mirror>/<id>.jpg``.
    """
    path = Path(dataset_json)
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, None, f"expected a JSON object mapping image id to record, got {type(data).__name__}",
                          "is this OCR-VQA's dataset.json?")
    base = mirror.rstrip("/") + "/" if mirror else None
    items: list[tuple[str, str]] = []
    for key, rec in data.items():
        name = f"{key}.jpg"
        try:
            _check_name(name)
        except ValueError:
            raise FormatError(path, None, f"entry {key!r}: the id is not usable as a file name") from None
        if not isinstance(rec, dict):
            raise FormatError(path, None, f"entry {key!r}: expected an object, got {type(rec).__name__}")
        url = rec.get("imageURL")
        if not isinstance(url, str) or not url.strip():
            raise FormatError(path, None, f"entry {key!r}: missing or empty imageURL",
                              "each record needs the image's URL, as in OCR-VQA's dataset.json")
        if needed is not None and name not in needed:
            continue
        items.append((name, base + quote(name) if base else url.strip()))
    return items
