"""Atomic file writing and line-aware JSON reading.

Every output of a stage goes through :func:`atomic_write` so a killed job never leaves a file
that looks complete: data goes to a temporary file in the same folder, which is renamed over
the target only once it is fully written and flushed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


class FormatError(ValueError):
    """A problem in an input file, located by file and line (or record) number."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str, hint: str = ""):
        self.path, self.line, self.message, self.hint = str(path), line, message, hint
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}" + (f" ({hint})" if hint else ""))


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``/proc/self/status``);
    elsewhere set and restored under a lock (os.umask can only be read by setting it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """The mode ``open``/``mkdir`` would give a new file (``folder``: a new folder) under the umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def _temp_file(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` with the mode the umask gives (mkstemp alone makes it 0600:
    group members on a shared file system could not read the renamed output)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, default_mode())
    return fd, tmp


def temp_dir(parent: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """A new temporary folder in ``parent`` with the mode the umask gives (mkdtemp makes it 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(tmp, default_mode(folder=True))
    return tmp


def apply_umask(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the mode the umask gives (keeping executable bits): for
    folders filled by libraries that write through private temporary files (transformers writes
    ``model.safetensors`` with mode 0600)."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, default_mode() | (path.stat().st_mode & 0o111 & ~_umask()))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(path.parent, prefix=f".{path.name}.")
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, streamed so multi-GB files need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON, atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=indent, ensure_ascii=False)
        fh.write("\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write one JSON object a line, atomically."""
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a syntax error names the file and line."""
    path = Path(path)
    if not path.exists():
        raise FormatError(path, None, "file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise FormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file (blank lines skipped); a bad line names the file and line."""
    path = Path(path)
    if not path.exists():
        raise FormatError(path, None, "file not found")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise FormatError(path, lineno, f"invalid JSON: {e.msg}", "one JSON object per line") from None
            if not isinstance(row, dict):
                raise FormatError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows
