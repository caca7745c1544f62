"""What a stage is: its kind, its benchmark (evaluation stages), and the names derived from them.

Every part of the package that needs to tell stages apart (config composition, resources, the
plan, the CLI, tracking) takes a :class:`Stage` instead of parsing a string.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Stages run once per dataset, shared by every experiment that uses it.
DATA_KINDS = ("synthesize", "download", "filter")
TRAIN_KINDS = ("pretrain", "finetune")
KINDS = (*DATA_KINDS, *TRAIN_KINDS, "evaluate", "report")
EVAL_PREFIX = "eval/"


@dataclass(frozen=True)
class Stage:
    """One stage of an experiment's DAG; ``benchmark`` is set exactly for ``kind == "evaluate"``."""

    kind: str
    benchmark: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown stage kind {self.kind!r}; kinds are {', '.join(KINDS)}")
        if (self.kind == "evaluate") != bool(self.benchmark):
            raise ValueError("an evaluate stage needs a benchmark, and only an evaluate stage has one")

    @classmethod
    def parse(cls, key: str) -> Stage:
        """The stage named ``key`` (``"finetune"``, ``"eval/pope"``), as :attr:`key` writes it."""
        if key.startswith(EVAL_PREFIX):
            return cls("evaluate", key[len(EVAL_PREFIX):])
        if key == "evaluate":
            raise ValueError(f"name the benchmark: {EVAL_PREFIX}<benchmark>")
        return cls(key)

    @classmethod
    def evaluate(cls, benchmark: str) -> Stage:
        return cls("evaluate", benchmark)

    @property
    def key(self) -> str:
        """The stage's name in plans, MLflow run names and tags: ``finetune``, ``eval/pope``."""
        return f"{EVAL_PREFIX}{self.benchmark}" if self.benchmark is not None else self.kind

    @property
    def slug(self) -> str:
        """The key as a file name: ``eval_pope``."""
        return self.key.replace("/", "_")

    @property
    def per_dataset(self) -> bool:
        return self.kind in DATA_KINDS

    @property
    def trains(self) -> bool:
        return self.kind in TRAIN_KINDS

    def __str__(self) -> str:
        return self.key


def experiment_stages(benchmarks: list[str], synthetic: bool) -> list[Stage]:
    """Every stage of an experiment's DAG, in order."""
    data = [Stage(k) for k in DATA_KINDS if synthetic or k != "synthesize"]
    return [*data, *(Stage(k) for k in TRAIN_KINDS), *(Stage.evaluate(b) for b in benchmarks), Stage("report")]
