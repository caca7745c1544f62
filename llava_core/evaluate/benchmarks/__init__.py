"""The 12 benchmarks of the LLaVA-1.5 table, by registry name."""

from __future__ import annotations

from llava_core.evaluate.benchmarks.base import Benchmark, EvalQuestion
from llava_core.evaluate.benchmarks.gqa import GQA
from llava_core.evaluate.benchmarks.pope import POPE
from llava_core.evaluate.benchmarks.scienceqa import ScienceQA

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (GQA(), ScienceQA(), POPE())}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name``; unknown names raise ``ValueError`` listing the allowed ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(BENCHMARKS)}") from None


__all__ = ["BENCHMARKS", "Benchmark", "EvalQuestion", "get_benchmark"]
