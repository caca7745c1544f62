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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


class FormatError(ValueError):
    """A problem in an input file, located by file and line (or record) number."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str, hint: str = ""):
        self.path, self.line, self.message, self.hint = str(path), line, message, hint
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}" + (f" ({hint})" if hint else ""))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
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
