"""What the benchmark writers share: where a benchmark's declared files go, and what was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_core.evalkit import Kit
from llava_core.io import write_json, write_jsonl

#: The most questions of the nine small benchmarks (all but GQA, POPE and ScienceQA).
SMALL_EVAL = 48


@dataclass
class Written:
    """What one writer wrote: rows per counted file (by path under the eval root) and the rows the
    world's corpus reads."""

    #: The benchmark's name (its module's ``name``).
    benchmark: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)
    #: The expected score, in the benchmark's unit, of an answerer that knows the answer format but
    #: not the image (the best of a uniform guess among the valid answers and a constant answer).
    chance: float = float("nan")


class KitWriter:
    """Writes one benchmark's files under ``eval_root`` where its module declares them."""

    def __init__(self, bench: Kit, eval_root: Path):
        self.bench, self.eval_root = bench, Path(eval_root)
        self.root = bench.root(eval_root)
        self.written = Written(benchmark=bench.name)

    def path(self, role: str, **fields: str) -> Path:
        """The declared file ``role`` (``fields`` fill its placeholders)."""
        return self.bench.path(self.eval_root, role, **fields)

    def folder(self, role: str) -> Path:
        """The declared folder ``role``, created."""
        path = self.path(role)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def count(self, role: str, n: int, **fields: str) -> None:
        self.written.counts[self.path(role, **fields).relative_to(self.eval_root).as_posix()] = n

    def jsonl(self, role: str, rows: list[dict], counted: bool = True, **fields: str) -> None:
        """Write ``rows`` as the declared jsonl ``role`` (counting them unless ``counted`` is false)."""
        write_jsonl(self.path(role, **fields), rows)
        if counted:
            self.count(role, len(rows), **fields)

    def json(self, role: str, obj: Any, n: int | None = None, indent: int | None = 2) -> None:
        """Write ``obj`` as the declared JSON ``role``, counted as ``n`` rows when given."""
        write_json(self.path(role), obj, indent=indent)
        if n is not None:
            self.count(role, n)
