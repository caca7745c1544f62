"""Every benchmark, for code that works on all of them (the eval-overlap index, the tiny world).

Importing this module imports every benchmark module, so a stage that does is planned again when
any benchmark changes, as it should be (``llava_core/plan/code_digest.py`` follows these imports).
"""

from __future__ import annotations

from llava_core.evaluate.benchmarks import (  # noqa: F401 - imported for the import graph, see above
    REGISTRY,
    get_benchmark,
    gqa,
    llava_bench,
    mm_vet,
    mmbench,
    mme,
    pope,
    scienceqa,
    seed_bench,
    textvqa,
    vizwiz,
    vqav2,
)
from llava_core.evaluate.benchmarks.base import Benchmark


def all_benchmarks() -> dict[str, Benchmark]:
    """Every registered benchmark by name, in the paper's column order."""
    return {name: get_benchmark(name) for name in REGISTRY}
