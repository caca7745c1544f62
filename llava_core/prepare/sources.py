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
URL_SCHEMES = ("http", "https", "file", "hf")
HF_ENDPOINT = "https://huggingface.co"
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
        self.url = hub_url(self.url)

    @property
    def filename(self) -> str:
        """The last path component of ``url``: what a mirror is expected to serve."""
        return url_filename(self.url)


def url_filename(url: str) -> str:
    """The file name at the end of a URL's path (query and fragment ignored)."""
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def hub_url(url: str) -> str:
    """``hf://datasets/<owner>/<repo>/<path>[@<revision>]`` -> the hub's resolve URL; others unchanged.

    A hub path names the file the way the hub's docs do; the download itself is a plain HTTPS GET
    (resumable like any other), so no hub client or token handling is needed for public files.
    """
    if not url.startswith("hf://"):
        return url
    path = url[len("hf://"):]
    kind, _, rest = path.partition("/")
    parts = rest.split("/")
    if kind not in ("datasets", "models") or len(parts) < 3:
        raise ValueError(f"hub path {url!r} must look like hf://datasets/<owner>/<repo>/<file path>[@<revision>]")
    repo, file_path = "/".join(parts[:2]), "/".join(parts[2:])
    file_path, _, revision = file_path.partition("@")
    prefix = "datasets/" if kind == "datasets" else ""
    return f"{HF_ENDPOINT}/{prefix}{repo}/resolve/{revision or 'main'}/{file_path}"


class NoMirrorError(ValueError):
    """A mirror-only source (relative URL) with no base URL or mirror to fetch it from."""


def resolve_url(source: Source, mirror: str | None = None, base_url: str | None = None) -> str:
    """The URL to fetch.

    A per-source ``mirror`` is a base that serves the file under its own name. A relative URL is
    resolved against ``base_url`` (or else the global mirror). The global
    ``mirror`` is laid out like ``wget -x`` makes it, ``<mirror>/<host>/<path>``, so one mirror
    holds every source even where file names repeat (LCS-558K, GQA and VG all ship ``images.zip``).
    """
    if source.mirror:
        return source.mirror.rstrip("/") + "/" + source.filename
    if is_relative(source.url):
        base = base_url or mirror
        if not base:
            raise NoMirrorError(f"source {source.name!r}: {source.url!r} is only served by mirrors; set data.base_url "
                                f"(or data.mirror) to one that serves it, or put its contents at {source.dest!r} "
                                "in the data dir yourself")
        return base.rstrip("/") + "/" + source.url
    if not mirror:
        return source.url
    parsed = urlparse(source.url)
    if parsed.scheme == "file":
        return source.url  # already local
    return mirror.rstrip("/") + "/" + parsed.netloc + parsed.path


def check_links(links: dict[str, str]) -> dict[str, str]:
    """Validate ``{link path: target path}`` (both relative to the data dir, neither escaping it).

    Links glue separately downloaded pieces into the layout a consumer expects (benchmark images
    into the eval-kit folders, one GQA image folder shared by training and evaluation).
    """
    if not isinstance(links, dict):
        raise ValueError(f"links must be a mapping of link path -> target path, got {type(links).__name__}")
    for link, target in links.items():
        for key, value in (("link", link), ("target", target)):
            p = PurePosixPath(value) if isinstance(value, str) else None
            if p is None or not value or p.is_absolute() or ".." in p.parts or "\\" in value:
                raise ValueError(f"links[{link!r}]: the {key} must be a relative path inside the data dir, "
                                 f"got {value!r}")
        if PurePosixPath(target) == PurePosixPath(link) or PurePosixPath(link) in PurePosixPath(target).parents:
            raise ValueError(f"links[{link!r}]: the target {target!r} lies inside the link itself")
    return dict(links)


def is_relative(url: str) -> bool:
    """A URL without scheme names a file only mirrors serve (the eval kit lives on Google Drive)."""
    return isinstance(url, str) and "://" not in url and not url.startswith("/")


def _check_url(value: Any, key: str, where: str) -> None:
    if key == "url" and is_relative(value) and value and ".." not in PurePosixPath(value).parts:
        return
    if not isinstance(value, str) or urlparse(value).scheme not in URL_SCHEMES:
        raise ValueError(f"{where}: {key!r} must be an {'/'.join(URL_SCHEMES)} URL"
                         + (" or a path relative to the mirror" if key == "url" else "") + f", got {value!r}")
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
