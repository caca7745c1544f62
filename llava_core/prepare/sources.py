"""Declared data sources: what to fetch, where it lands, and the bytes we expect.

Sources come from config (lists of plain dicts), so they are validated here once, with errors
that name the offending entry and key, before any network traffic starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

UNPACK_KINDS = ("none", "zip", "tar")
URL_SCHEMES = ("http", "https", "file")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Source:
    """One file to download; ``dest`` is relative to the data dir (the folder, when unpacked)."""

    name: str
    url: str
    dest: str
    sha256: str | None = None
    size: int | None = None
    unpack: str = "none"
    mirror: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sha256, str):
            self.sha256 = self.sha256.strip().lower()
        _validate(self, where=f"source {self.name!r}")

    @property
    def filename(self) -> str:
        """The last path component of ``url``: what a mirror is expected to serve."""
        return url_filename(self.url)


def url_filename(url: str) -> str:
    """The file name at the end of a URL's path (query and fragment ignored)."""
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def resolve_url(source: Source, mirror: str | None = None) -> str:
    """The URL to fetch: a per-source mirror beats the global one; both replace only the base."""
    base = source.mirror or mirror
    if not base:
        return source.url
    return base.rstrip("/") + "/" + source.filename


def _check_url(value: Any, key: str, where: str) -> None:
    if not isinstance(value, str) or urlparse(value).scheme not in URL_SCHEMES:
        raise ValueError(f"{where}: {key!r} must be an {'/'.join(URL_SCHEMES)} URL, got {value!r}")
    parsed = urlparse(value)
    if parsed.scheme != "file" and not parsed.netloc:
        raise ValueError(f"{where}: {key!r} has no host: {value!r}")


def _validate(src: Source, where: str) -> None:
    """Reject values that would misbehave later (bad URL, dest escaping the data dir, bad digest)."""
    if not isinstance(src.name, str) or not _NAME_RE.match(src.name):
        raise ValueError(f"{where}: 'name' must match {_NAME_RE.pattern}, got {src.name!r}")
    _check_url(src.url, "url", where)
    if not src.filename:
        raise ValueError(f"{where}: 'url' must end in a file name, got {src.url!r}")
    if src.mirror is not None:
        _check_url(src.mirror, "mirror", where)
    dest = src.dest
    if not isinstance(dest, str) or not dest or "\\" in dest:
        raise ValueError(f"{where}: 'dest' must be a non-empty relative path, got {dest!r}")
    parts = PurePosixPath(dest).parts
    if PurePosixPath(dest).is_absolute() or ".." in parts or parts in ((), (".",)):
        raise ValueError(f"{where}: 'dest' must stay inside the data dir (relative, no '..'), got {dest!r}")
    if src.sha256 is not None and (not isinstance(src.sha256, str) or not _SHA_RE.match(src.sha256)):
        raise ValueError(f"{where}: 'sha256' must be 64 lowercase hex digits, got {src.sha256!r}")
    if src.size is not None and (isinstance(src.size, bool) or not isinstance(src.size, int) or src.size < 0):
        raise ValueError(f"{where}: 'size' must be a non-negative integer (bytes), got {src.size!r}")
    if src.unpack not in UNPACK_KINDS:
        raise ValueError(f"{where}: 'unpack' must be one of {list(UNPACK_KINDS)}, got {src.unpack!r}")


def check_unique(sources: list[Source]) -> None:
    """Names must be unique and no dest may contain another (an unpack replaces its whole folder)."""
    seen: dict[str, str] = {}
    dests: dict[PurePosixPath, str] = {}
    for src in sources:
        if src.name in seen:
            raise ValueError(f"source name {src.name!r} is used twice")
        seen[src.name] = src.dest
        dest = PurePosixPath(src.dest)
        for other, other_name in dests.items():
            if dest == other or other in dest.parents or dest in other.parents:
                raise ValueError(f"sources {other_name!r} and {src.name!r} have overlapping dest "
                                 f"{str(other)!r} / {str(dest)!r}")
        dests[dest] = src.name


def sources_from_config(items: list[dict]) -> list[Source]:
    """Build sources from config dicts; an unknown or missing key or a bad value names itself."""
    if not isinstance(items, list):
        raise ValueError(f"sources must be a list of mappings, got {type(items).__name__}")
    known = {f.name for f in fields(Source)}
    required = ("name", "url", "dest")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"sources[{i}]: expected a mapping, got {type(item).__name__}")
        where = f"sources[{i}] (name={item.get('name')!r})"
        unknown = sorted(set(map(str, item)) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        missing = [k for k in required if k not in item]
        if missing:
            raise ValueError(f"{where}: missing required key(s) {missing}")
        try:
            out.append(Source(**item))
        except ValueError as e:
            raise ValueError(f"sources[{i}]: {e}") from None
    check_unique(out)
    return out
