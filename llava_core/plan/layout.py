"""Where every stage writes: one function per kind of path, for concrete paths and patterns alike.

Called with real names (``experiment="tiny"``) they give the paths a job writes; called with
Snakemake wildcards (``experiment="{experiment}"``) they give the rules' patterns, so the
workflow and the package cannot disagree on a path.
"""

from __future__ import annotations

from llava_core.plan.stage import Stage

#: The outputs of each job, by name, relative to the job's folder (:func:`job_dir`).
OUTPUTS: dict[str, dict[str, str]] = {
    "synthesize": {"sources": "mirror/sources.json"},
    "download": {"summary": "download.json"},
    "filter": {"manifest": "filtered/manifest.json", "pretrain": "filtered/pretrain.json",
               "finetune": "filtered/finetune.json",
               # what training memory-maps (llava_core/data/index.py), beside each JSON set
               "pretrain_index": "filtered/pretrain.arrow", "finetune_index": "filtered/finetune.arrow"},
    "pretrain": {"projector": "mm_projector.bin", "metrics": "metrics.json"},
    "finetune": {"model": "model", "metrics": "metrics.json"},
    "evaluate": {"scores": "scores.json", "answers": "answers.jsonl"},
    "evaluate_shard": {"answers": "shards/{shard}_of_{n}.jsonl"},
    "report": {"md": "report.md", "csv": "report.csv", "png": "report.png",
               # the figures and tables of `snakemake --report` (workflow/report/): each training
               # stage's loss and learning rate against step, and the filter's kept/dropped counts
               "pretrain_curves": "curves/pretrain.png", "finetune_curves": "curves/finetune.png",
               "data_summary": "data_summary.csv"},
    "summary": {"md": "report.md"},
}

#: Outputs that are folders (Snakemake's ``directory()``), by job.
FOLDERS: dict[str, tuple[str, ...]] = {"filter": ("pretrain_index", "finetune_index"), "finetune": ("model",)}


def data_dir(results: str, dataset: str) -> str:
    """A dataset's folder: mirror (tiny world), sources, lock file, filtered training sets."""
    return f"{results}/data/{dataset}"


def experiment_dir(results: str, experiment: str) -> str:
    return f"{results}/{experiment}"


def stage_dir(results: str, stage: Stage, *, experiment: str = "", dataset: str = "") -> str:
    """The folder a stage writes into (its ``--out``, or ``--data-dir`` for a dataset stage)."""
    if stage.per_dataset:
        return data_dir(results, dataset)
    if stage.kind == "report":
        return experiment_dir(results, experiment)
    return f"{experiment_dir(results, experiment)}/{stage.key}"


def outputs(job: str, base: str, **names: str) -> dict[str, str]:
    """The outputs of ``job`` (a rule: a stage kind, ``evaluate_shard`` or ``summary``) under
    ``base`` (its :func:`stage_dir`, or the results folder for ``summary``); ``names`` fill the
    ``{shard}``/``{n}`` fields of shard outputs (left as patterns when omitted)."""
    fields = {"shard": "{shard}", "n": "{n}", **names}
    return {k: f"{base}/{v.format(**fields)}" for k, v in OUTPUTS[job].items()}


def shard_answers(out_dir: str, shard: int | str, num_shards: int | str) -> str:
    """The answers of the ``shard``-th of ``num_shards`` generation jobs of a benchmark."""
    return outputs("evaluate_shard", str(out_dir), shard=str(shard), n=str(num_shards))["answers"]


def log_file(results: str, job: str, stage: Stage, *, experiment: str = "", dataset: str = "",
             suffix: str = "", folder: str = "logs", ext: str = ".log") -> str:
    """A job's log (``folder="benchmarks", ext=".tsv"``: Snakemake's benchmark file)."""
    if stage.per_dataset:
        return f"{results}/{folder}/data/{dataset}/{job}{suffix}{ext}"
    return f"{results}/{folder}/{experiment}/{stage.key}{suffix}{ext}"
