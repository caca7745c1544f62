"""``llava-core plan``: every fact the workflow needs about an experiment's stages, in one place.

Per stage: its config digest and code digest (the rerun triggers), its folder and every output
path, and the resources of each of its jobs (a sharded benchmark's generation jobs and its merge
job included). The Snakemake rules read all of these and hard-code none.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from llava_core.config.compose import (
    SMALL_JOB,
    config_dir,
    config_hash,
    load_experiment,
    stage_config,
    stage_resources,
    stages,
)
from llava_core.plan import layout
from llava_core.plan.code_digest import CodeGraph
from llava_core.plan.stage import KINDS, Stage

#: The function each stage's job runs (its code digest starts there).
ENTRY = {kind: f"llava_core.cli:cmd_{kind}" for kind in (*KINDS, "summary")}

#: A merge job only concatenates shard answers and scores them: a small CPU job.
MERGE_JOB = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 4000, "runtime": 30}
SUMMARY_JOB = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 1000, "runtime": 5}


def benchmark_module(benchmark: str) -> str:
    """The module defining ``benchmark``'s loading and scoring (named from its kit, not imported)."""
    from llava_core.evalkit import KITS

    return f"llava_core.evaluate.benchmarks.{KITS[benchmark].partition(':')[0]}"


@lru_cache(maxsize=1)
def _graph() -> CodeGraph:
    return CodeGraph()


def stage_code(cfg, stage: Stage, graph: CodeGraph | None = None):
    """The code digest of a stage: its entry function, the ``llava_core`` modules it imports, and
    the config files it reads besides the composed config (a DeepSpeed JSON)."""
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    if stage.kind == "evaluate":
        modules = (benchmark_module(stage.benchmark),)
    if stage.trains and cfg[stage.kind].deepspeed:
        files = (str(config_dir() / "deepspeed" / cfg[stage.kind].deepspeed),)
    return (graph or _graph()).digest([ENTRY[stage.kind]], modules, [Path(f) for f in files])


def job_resources(res: dict) -> dict:
    """Our resources as the Snakemake resources of a job.

    One node: ``gpu`` (``sbatch --gpus=N``; also limits local runs given ``--resources gpu=N``).
    Several nodes: ``gres`` (``--gres=gpu:N`` is per node; ``--gpus`` would count the whole job).
    """
    multi = res["nodes"] > 1
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "nodes": res["nodes"],
            "cpus_per_task": res["cpus"], "threads": res["cpus"],
            "gpu": 0 if multi else res["gpus"], "gres": f"gpu:{res['gpus']}" if multi and res["gpus"] else ""}


def _stage_entry(cfg, stage: Stage, results: str) -> dict:
    where = {"experiment": cfg.name, "dataset": cfg.data.name}
    out_dir = layout.stage_dir(results, stage, **where)
    sc = stage_config(cfg, stage)
    code = stage_code(cfg, stage)
    res = stage_resources(cfg, stage)
    entry = {"kind": stage.kind, "benchmark": stage.benchmark, "slug": stage.slug,
             "config_digest": config_hash(sc), "code_digest": code.digest, "code_modules": list(code.modules),
             "dir": out_dir, "outputs": layout.outputs(stage.kind, out_dir),
             "log": layout.log_file(results, stage.kind, stage, **where),
             "resources": res, "jobs": {stage.kind: job_resources(res)}}
    if stage.kind == "evaluate":
        n = int(sc["settings"]["num_shards"])
        # Shard jobs only generate: their trigger leaves out the judge and the shard count.
        gen = {**sc, "settings": {k: v for k, v in sc["settings"].items() if k != "num_shards"}}
        gen.pop("judge", None)
        local_judge = "judge" in sc and sc["judge"]["kind"] == "local"
        entry.update(num_shards=n, generation_digest=config_hash(gen),
                     shard_outputs=[layout.shard_answers(out_dir, k, n) for k in range(n)] if n > 1 else [])
        if n > 1:
            entry["jobs"]["evaluate_shard"] = job_resources(res)
            # The merge job judges and scores; it needs the eval GPU only to run a local judge.
            entry["jobs"]["evaluate"] = job_resources(res if local_judge else MERGE_JOB)
    return entry


def _patterns(results: str) -> dict:
    """Every job's output, log and benchmark-file patterns, with Snakemake wildcards."""
    wild = {"experiment": "{experiment}", "dataset": "{dataset}"}
    out = {}
    for kind in KINDS:
        stage = Stage.evaluate("{benchmark}") if kind == "evaluate" else Stage(kind)
        base = layout.stage_dir(results, stage, **wild)
        out[kind] = {"outputs": layout.outputs(kind, base), "folders": list(layout.FOLDERS.get(kind, ())), "dir": base,
                     "log": layout.log_file(results, kind, stage, **wild),
                     "benchmark": layout.log_file(results, kind, stage, folder="benchmarks", ext=".tsv", **wild)}
        if kind == "evaluate":
            suffix = ".shard{shard}_of_{n}"
            out["evaluate_shard"] = {
                "outputs": layout.outputs("evaluate_shard", base), "folders": [], "dir": base,
                "log": layout.log_file(results, kind, stage, suffix=suffix, **wild),
                "benchmark": layout.log_file(results, kind, stage, suffix=suffix, folder="benchmarks", ext=".tsv",
                                             **wild)}
    out["summary"] = {"outputs": layout.outputs("summary", results), "folders": [], "dir": results,
                      "log": f"{results}/logs/summary.log", "benchmark": f"{results}/benchmarks/summary.tsv"}
    return out


def plan(name: str, overrides: list[str] | tuple[str, ...] = (), results: str = "results") -> dict:
    """Everything the workflow needs about an experiment (see the module docstring)."""
    cfg = load_experiment(name, overrides)
    results = results.rstrip("/") or "."
    summary_code = _graph().digest([ENTRY["summary"]])
    return {"experiment": name, "dataset": cfg.data.name, "synthetic": cfg.data.synthetic is not None,
            "released": cfg.get("released") is not None,
            "benchmarks": list(cfg.evaluation.benchmarks),
            # what experiments sharing the dataset must agree on: its sources and its generated part
            "dataset_config": {**stage_config(cfg, "download"), **stage_config(cfg, "instruct")["data"]},
            "results": results,
            "stages": {st.key: _stage_entry(cfg, st, results) for st in stages(cfg)},
            "summary": {"code_digest": summary_code.digest, "code_modules": list(summary_code.modules),
                        "jobs": {"summary": job_resources(SUMMARY_JOB)}},
            "layout": _patterns(results)}


__all__ = ["ENTRY", "MERGE_JOB", "SMALL_JOB", "job_resources", "plan", "stage_code"]
