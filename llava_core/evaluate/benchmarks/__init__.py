"""The 12 benchmarks of the LLaVA-1.5 table, by registry name (in the paper's column order)."""

from __future__ import annotations

from llava_core.evaluate.benchmarks.base import Benchmark, EvalQuestion, ReviewsRequired
from llava_core.evaluate.benchmarks.gqa import GQA
from llava_core.evaluate.benchmarks.llava_bench import LLaVABench
from llava_core.evaluate.benchmarks.mm_vet import MMVet
from llava_core.evaluate.benchmarks.mmbench import MMBench, MMBenchCN
from llava_core.evaluate.benchmarks.mme import MME
from llava_core.evaluate.benchmarks.pope import POPE
from llava_core.evaluate.benchmarks.scienceqa import ScienceQA
from llava_core.evaluate.benchmarks.seed_bench import SEEDBench
from llava_core.evaluate.benchmarks.textvqa import TextVQA
from llava_core.evaluate.benchmarks.vizwiz import VizWiz
from llava_core.evaluate.benchmarks.vqav2 import VQAv2

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b for b in (VQAv2(), GQA(), VizWiz(), ScienceQA(), TextVQA(), POPE(), MME(), MMBench(), MMBenchCN(),
                        SEEDBench(), LLaVABench(), MMVet())
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name``; unknown names raise ``ValueError`` listing the allowed ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(BENCHMARKS)}") from None


__all__ = ["BENCHMARKS", "Benchmark", "EvalQuestion", "ReviewsRequired", "get_benchmark"]
