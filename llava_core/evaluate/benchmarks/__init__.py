"""The 12 benchmarks of the LLaVA-1.5 table (their loading, prompting and scoring code), by name.

The names, their order and their modules come from the kits (``llava_core/evalkit``): benchmark
``pope`` is ``pope:POPE`` here and ``pope:POPEKit`` there. The registry names each benchmark's module
without importing it, and an evaluation job imports only its own benchmark's module, so a stage's
code digest (``llava_core/plan``) covers the benchmark it runs and not the eleven others.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llava_core.evaluate.benchmarks.base import Benchmark

from llava_core.evalkit import KITS

#: name -> "module:Class" inside this package (the kit's class without its ``Kit`` suffix).
REGISTRY: dict[str, str] = {name: spec.removesuffix("Kit") for name, spec in KITS.items()}


def _known(name: str) -> str:
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def benchmark_module(name: str) -> str:
    """The module defining benchmark ``name`` (``llava_core.evaluate.benchmarks.pope``), not imported."""
    return f"{__name__}.{_known(name).partition(':')[0]}"


@cache
def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name``; unknown names raise ``ValueError`` listing the allowed ones."""
    module, _, cls = _known(name).partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


class _Benchmarks(Mapping):
    """name -> benchmark, importing a benchmark's module only when it is looked up."""

    def __getitem__(self, name: str) -> Benchmark:
        if name not in REGISTRY:
            raise KeyError(name)
        return get_benchmark(name)

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


BENCHMARKS: Mapping[str, Benchmark] = _Benchmarks()

__all__ = ["BENCHMARKS", "REGISTRY", "benchmark_module", "get_benchmark"]
