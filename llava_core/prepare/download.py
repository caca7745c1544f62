"""Fetch declared sources into the data dir: resumable, verified, safely unpacked, recorded in a lock.

Why each piece exists:

* Multi-GB archives (COCO, LCS-558K images) over flaky links: downloads go to a ``.part`` file
  and resume with HTTP ``Range`` after a dropped connection, with a few retries and backoff.
* Silent upstream changes would make runs irreproducible: every file's sha256 is computed and
  written to a lock file; a later run whose bytes differ from the lock stops, loudly, until the
  user accepts the change by deleting that lock entry.
* Archives are untrusted input: members that would land outside their folder (``../x``,
  absolute paths, links pointing outside) are refused, and unpacking happens in a temporary
  folder that replaces ``dest`` only once complete, so a killed job never leaves half a folder
  that looks done.

Layout: a source with ``unpack="none"`` lands at ``<data_dir>/<dest>``; an archive is unpacked
into the folder ``<data_dir>/<dest>``. If the archive holds a single top-level folder with the
same name as ``dest`` (``train2017.zip`` -> ``train2017/...`` with ``dest: coco/train2017``),
its contents land directly in ``dest`` instead of one level deeper. Partial downloads live in
``<data_dir>/.downloads/``; archives are deleted once unpacked, so an unpacked folder counts as
present only together with its lock entry (a folder without one is fetched and replaced).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlparse

from tqdm import tqdm

from llava_core.io import FormatError, atomic_dir, read_json, sha256_file, write_json
from llava_core.prepare.sources import NoMirrorError, Source, check_links, check_unique, resolve_url

TRIES = 3  # attempts per download before giving up
BACKOFF_S = 1.0  # wait before the first retry; doubles after each failure (tests shrink it)
TIMEOUT_S = 60.0  # socket timeout: a stalled connection counts as a failed attempt
CHUNK = 1 << 20
USER_AGENT = "llava-core-prepare/0.1"
DOWNLOADS_DIR = ".downloads"
log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A source could not be fetched or placed."""

    user_facing = True  # the CLI prints the message (it names the source and what to check), no traceback


class ChecksumError(DownloadError):
    """The fetched bytes do not match the sha256/size pinned in the source config (twice)."""


class LockMismatchError(DownloadError):
    """The fetched bytes differ from those recorded in the lock: upstream changed."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written (or link) outside its target folder."""


class _Retryable(Exception):
    """A transient failure (dropped connection, timeout, 5xx): worth another attempt."""


# --------------------------------------------------------------------------------------------- lock


def read_lock(lock_path: Path) -> dict:
    """The lock as ``{"sources": {name: entry}}``; an empty one if the file does not exist yet."""
    if not lock_path.exists():
        return {"sources": {}}
    data = read_json(lock_path)
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        raise FormatError(lock_path, None, "expected {\"sources\": {name: {url, sha256, size, dest}}}",
                          "delete the lock file to rebuild it from fresh downloads")
    for name, entry in data["sources"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise FormatError(lock_path, None, f"lock entry {name!r} has no sha256",
                              f"delete the entry {name!r} to re-download and re-record it")
    return data


def _accept_hint(name: str, lock_path: Path) -> str:
    return (f"if the upstream file changed on purpose, accept the new bytes by deleting the entry "
            f"{name!r} under \"sources\" in {lock_path} and rerun")


# ----------------------------------------------------------------------------------------- fetching


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from ``bytes 100-199/200`` or ``bytes */200``; None where absent."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = int(span.split("-")[0]) if span and span != "*" else None
    return start, (int(total) if total.isdigit() else None)


def _copy_stream(src: IO[bytes], dst: IO[bytes], bar: tqdm) -> int:
    n = 0
    while block := src.read(CHUNK):
        dst.write(block)
        n += len(block)
        bar.update(len(block))
    return n


def _fetch_file_url(url: str, part: Path, bar: tqdm) -> None:
    """Copy a file:// URL into ``part``, continuing from its current length (local 'resume')."""
    path = Path(urllib.request.url2pathname(urlparse(url).path))
    if not path.is_file():
        raise DownloadError(f"{url}: no such file")
    offset = part.stat().st_size if part.exists() else 0
    if offset > path.stat().st_size:
        offset = 0
    bar.reset(total=bar.total)
    bar.update(offset)
    with open(path, "rb") as fin, open(part, "r+b" if offset else "wb") as fout:
        fin.seek(offset)
        fout.seek(offset)
        fout.truncate()
        _copy_stream(fin, fout, bar)


def _fetch_http(url: str, part: Path, bar: tqdm) -> None:
    """One attempt to bring ``part`` up to the full file, resuming with a Range request."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == offset:
                return  # the part file is already complete
            part.unlink(missing_ok=True)
            raise _Retryable(f"HTTP 416 for bytes={offset}-; restarting from scratch") from None
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise _Retryable(f"{type(e).__name__}: {e}") from None
    with resp:
        if resp.status == 206:
            start, _ = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(f"server answered range start {start}, asked {offset}; restarting")
            mode = "ab"
        else:  # 200: the server ignored Range, start over
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        bar.reset(total=bar.total)
        bar.update(offset)
        with open(part, mode) as fh:
            try:
                got = _copy_stream(resp, fh, bar)
            except (http.client.HTTPException, OSError) as e:
                raise _Retryable(f"{type(e).__name__}: {e}") from None
    if expected is not None and got < expected:
        raise _Retryable(f"connection closed after {offset + got} of {offset + expected} bytes")


def _download(url: str, part: Path, bar: tqdm) -> None:
    """Fetch ``url`` into ``part`` with retries and exponential backoff; each retry resumes."""
    fetch: Callable[[str, Path, tqdm], None] = _fetch_file_url if url.startswith("file:") else _fetch_http
    last: Exception | None = None
    for attempt in range(TRIES):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            fetch(url, part, bar)
            return
        except _Retryable as e:
            last = e
    raise DownloadError(f"{url}: failed after {TRIES} tries: {last}")


# ---------------------------------------------------------------------------------------- unpacking


def _refuse(archive: str, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: refusing to unpack: member {member!r} {why}; nothing was written "
                              "to the destination (the archive may be malicious or broken)")


def _safe_rel(archive: str, name: str) -> PurePosixPath:
    """The member path, refused if absolute, drive-qualified or climbing with '..'."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or (rel.parts and rel.parts[0].endswith(":")) or ".." in rel.parts:
        raise _refuse(archive, name, "would be written outside the target folder")
    return rel


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


class _Member:
    """An archive entry, format-neutral: kind is 'dir', 'file', 'symlink' or 'hardlink'."""

    def __init__(self, name: str, kind: str, link: str = "", opener: Callable[[], IO[bytes]] | None = None):
        self.name, self.kind, self.link, self.opener = name, kind, link, opener


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            yield _Member(info.filename, "dir")
        elif info.create_system == 3 and stat.S_ISLNK(mode):
            yield _Member(info.filename, "symlink", zf.read(info).decode("utf-8", "replace"))
        else:
            yield _Member(info.filename, "file", opener=lambda info=info: zf.open(info))


def _tar_members(archive: str, tf: tarfile.TarFile) -> Iterator[_Member]:
    for m in tf:
        if m.isdir():
            yield _Member(m.name, "dir")
        elif m.isreg():
            yield _Member(m.name, "file", opener=lambda m=m: tf.extractfile(m))  # type: ignore[misc]
        elif m.issym():
            yield _Member(m.name, "symlink", m.linkname)
        elif m.islnk():
            yield _Member(m.name, "hardlink", m.linkname)
        else:
            raise _refuse(archive, m.name, "is a device, fifo or other special file")


def _extract(archive: str, members: Iterator[_Member], root: Path) -> None:
    """Write members under ``root``, checking each against the real (symlink-resolved) paths."""
    real_root = os.path.realpath(root)
    for m in members:
        rel = _safe_rel(archive, m.name)
        if not rel.parts or rel.parts == (".",):
            continue
        target = root / rel
        if not _inside(real_root, str(target.parent)):
            raise _refuse(archive, m.name, "goes through a link that points outside the target folder")
        if m.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()  # a repeated name replaces the entry, never writes through a link
        if m.kind == "file":
            assert m.opener is not None
            with m.opener() as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout, CHUNK)
        elif m.kind == "symlink":
            pointed = os.path.join(os.path.realpath(target.parent), m.link)
            if os.path.isabs(m.link) or not _inside(real_root, pointed):
                raise _refuse(archive, m.name, f"is a symlink to {m.link!r}, outside the target folder")
            os.symlink(m.link, target)
        else:  # hardlink: link names are relative to the archive root
            link = PurePosixPath(m.link.replace("\\", "/"))
            source = root / link
            if link.is_absolute() or ".." in link.parts or not _inside(real_root, str(source)) or not os.path.isfile(source):
                raise _refuse(archive, m.name, f"is a hard link to {m.link!r}, not a file inside the target folder")
            shutil.copyfile(os.path.realpath(source), target)


def unpack_archive(archive: Path, dest: Path, kind: str, label: str | None = None) -> None:
    """Unpack a zip or tar (any compression) into the folder ``dest``, atomically and safely.

    ``label`` names the archive in errors (defaults to its path).
    """
    name = label or str(archive)
    with atomic_dir(dest) as tmp:
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=tmp))
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _extract(name, _zip_members(zf), scratch)
        elif kind == "tar":
            with tarfile.open(archive, "r:*") as tf:
                _extract(name, _tar_members(name, tf), scratch)
        else:
            raise ValueError(f"unknown unpack kind {kind!r}")
        entries = list(scratch.iterdir())
        inner = scratch / dest.name
        top = inner if entries == [inner] and inner.is_dir() and not inner.is_symlink() else scratch
        for child in list(top.iterdir()):
            os.replace(child, tmp / child.name)
        shutil.rmtree(scratch)


# ------------------------------------------------------------------------------------------ sources


def _entry(src: Source, sha: str, size: int | None, **extra: Any) -> dict:
    return {"url": src.url, "sha256": sha, "size": size, "dest": src.dest, **extra}


def tree_digest(folder: Path) -> dict:
    """A fingerprint of an unpacked folder: sha256 over every file's relative path and size.

    Sizes, not contents: re-hashing half a million images on every run would cost more than the
    download; a missing, added, truncated or emptied file (the usual damage) changes it.
    """
    h = hashlib.sha256()
    files = total = 0
    entries = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue  # links are made by make_links after unpacking, not part of the archive
            size = os.lstat(path).st_size
            entries.append((os.path.relpath(path, folder), size))
    for rel, size in sorted(entries):
        h.update(f"{rel}\0{size}\n".encode())
        files += 1
        total += size
    return {"sha256": h.hexdigest(), "files": files, "bytes": total}


def _present(src: Source, dest: Path, locked: dict | None, lock_path: Path) -> dict | None:
    """The lock entry of a source already in place, or None if it must be fetched.

    Files are checked against their pinned or locked sha256. Unpacked folders are checked against
    the tree digest recorded when they were unpacked. Files or folders that are already there with
    no lock entry (put in place by hand, or copied from another site) are adopted: recorded with
    ``adopted: true`` and verified against that record from then on.
    """
    lock_sha = (locked or {}).get("sha256") or None
    if src.unpack == "none":
        if not dest.is_file():
            return None
        want_sha = src.sha256 or lock_sha
        if want_sha:
            return _entry(src, want_sha, dest.stat().st_size) if sha256_file(dest) == want_sha else None
        if src.size is not None and dest.stat().st_size != src.size:
            return None
        log.warning("%s: adopting %s already in the data dir (no lock entry or pinned sha256)", src.name, dest)
        return _entry(src, sha256_file(dest), dest.stat().st_size, adopted=True)
    if not dest.is_dir() or dest.is_symlink():
        return None
    if locked and locked.get("dest") == src.dest and (locked.get("adopted") or locked.get("url") == src.url):
        tree = locked.get("tree")
        now = tree_digest(dest)
        if tree is None or tree.get("sha256") == now["sha256"]:  # locks from before tree digests: record one
            return {**locked, "url": src.url, "tree": now}
        log.warning("%s: %s changed since it was unpacked (%s files now, %s in %s); fetching it again",
                    src.name, dest, now["files"], tree.get("files"), lock_path)
        return None
    if not locked and any(dest.iterdir()):
        log.warning("%s: adopting the folder %s already in the data dir (no lock entry)", src.name, dest)
        return _entry(src, "", None, adopted=True, tree=tree_digest(dest))
    return None


@dataclass(frozen=True)
class FetchSettings:
    """What every source of one download run shares: where from, where to, the lock, progress bars."""

    mirror: str | None
    base_url: str | None
    data_dir: Path
    lock_path: Path
    progress: bool


def _fetch_source(src: Source, locked: dict | None, how: FetchSettings) -> dict:
    """Make one source present and verified (``locked``: its lock entry, if any); return its lock entry."""
    mirror, base_url, data_dir, lock_path, progress = how.mirror, how.base_url, how.data_dir, how.lock_path, how.progress
    if locked and locked.get("adopted"):
        lock_sha = None  # an adopted entry vouches for what was found, not for any download
    else:
        lock_sha = locked.get("sha256") if locked else None
    if src.sha256 and lock_sha and src.sha256 != lock_sha:
        raise LockMismatchError(f"{src.name}: the config pins sha256 {src.sha256} but {lock_path} records "
                                f"{lock_sha}; {_accept_hint(src.name, lock_path)}")
    dest = data_dir / src.dest
    entry = _present(src, dest, locked, lock_path)
    if entry is not None:
        return entry
    if locked and locked.get("adopted"):
        locked, lock_sha = None, None
    want_sha = src.sha256 or lock_sha
    want_size = src.size if src.size is not None else (locked or {}).get("size")
    try:
        url = resolve_url(src, mirror, base_url)
    except NoMirrorError as e:
        raise DownloadError(str(e)) from None

    part = data_dir / DOWNLOADS_DIR / f"{src.name}-{hashlib.sha1(src.url.encode()).hexdigest()[:8]}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=want_size, desc=src.name, unit="B", unit_scale=True, unit_divisor=1024,
              leave=False, disable=not progress) as bar:
        for attempt in range(2):  # a checksum mismatch earns one fresh download
            _download(url, part, bar)
            size = part.stat().st_size
            sha = sha256_file(part)
            if (want_size is None or size == want_size) and (want_sha is None or sha == want_sha):
                break
            part.unlink()
            if attempt == 1:
                got = f"got sha256 {sha}, {size} bytes; expected sha256 {want_sha}, {want_size} bytes"
                if (src.sha256 and sha != src.sha256) or (src.size is not None and size != src.size):
                    raise ChecksumError(f"{src.name}: {url}: checksum mismatch after a fresh re-download "
                                        f"({got}); the file or the pinned sha256/size in the config is wrong")
                raise LockMismatchError(f"{src.name}: {url}: the downloaded bytes differ from {lock_path} "
                                        f"({got}); {_accept_hint(src.name, lock_path)}")
    if src.unpack == "none":
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, dest)  # same filesystem: the verified file appears atomically
    else:
        unpack_archive(part, dest, src.unpack, label=f"{src.name} ({url})")
        part.unlink()
        return _entry(src, sha, size, tree=tree_digest(dest))
    return _entry(src, sha, size)


def make_links(data_dir: Path, links: dict[str, str]) -> None:
    """Create each ``link -> target`` as a relative symlink inside ``data_dir``.

    A link path that is already a real file or folder (put there by hand) is left alone; a missing
    target is an error that names the link, since the consumer would fail later, less clearly.
    """
    check_links(links)
    missing = [f"{link} -> {target}" for link, target in links.items() if not (data_dir / target).exists()]
    if missing:
        raise DownloadError("link targets missing from the data dir (declare a source that provides them, or "
                            "put them in place): " + "; ".join(sorted(missing)))
    for link, target in sorted(links.items()):
        path = data_dir / link
        if path.exists() and not path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(data_dir / target, path.parent)
        if path.is_symlink() and os.readlink(path) == rel:
            continue
        tmp = path.with_name(f".{path.name}.link.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(rel, tmp)
        os.replace(tmp, path)  # atomic: the link is either the old one or the new one


def download_sources(sources: list[Source], data_dir: Path, lock_path: Path, *, workers: int = 4,
                     mirror: str | None = None, base_url: str | None = None, links: dict[str, str] | None = None,
                     progress: bool = True) -> dict:
    """Fetch, verify and place every source in parallel; write and return the lock.

    Sources already present and matching their pinned or locked sha256 are skipped. Entries of
    sources that succeeded are written to the lock even when others fail, so a rerun resumes.
    """
    check_unique(sources)
    data_dir, lock_path = Path(data_dir), Path(lock_path)
    lock = read_lock(lock_path)
    locked: dict[str, Any] = lock["sources"]
    done: dict[str, dict] = {}
    errors: dict[str, BaseException] = {}
    with tqdm(total=len(sources), desc="sources", unit="src", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        how = FetchSettings(mirror, base_url, data_dir, lock_path, progress)
        futures = {pool.submit(_fetch_source, src, locked.get(src.name), how): src for src in sources}
        for fut in as_completed(futures):
            src = futures[fut]
            try:
                done[src.name] = fut.result()
            except Exception as e:  # keep going: the others' entries still reach the lock
                errors[src.name] = e
            bar.update(1)
    merged = {**locked, **done}
    new_lock = {"sources": {name: merged[name] for name in sorted(merged)}}
    if new_lock != lock or not lock_path.exists():
        write_json(lock_path, new_lock)
    if links and not errors:
        make_links(data_dir, links)
    if len(errors) == 1:
        raise next(iter(errors.values()))
    if errors:
        lines = "\n".join(f"  {name}: {err}" for name, err in sorted(errors.items()))
        raise DownloadError(f"{len(errors)} of {len(sources)} sources failed:\n{lines}")
    return new_lock
