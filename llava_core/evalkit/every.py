"""Every benchmark's kit, for the stages that read all of them (the synthetic world, the filter's
eval-overlap index).

Importing this module imports every kit module, so a stage that does is planned again when any
kit changes, and only then: the benchmarks' loading and scoring code is not imported here.
"""

from __future__ import annotations

from llava_core.evalkit import (  # noqa: F401 - imported for the import graph, see above
    KITS,
    Kit,
    gqa,
    kit,
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


def all_kits() -> dict[str, Kit]:
    """Every benchmark's kit by name, in the paper's column order."""
    return {name: kit(name) for name in KITS}
