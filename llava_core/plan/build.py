"""``llava-core plan``: every fact the workflow needs about the variants it runs, in one place.

Per variant: its name, group, preset, overrides and sweep axes, and which stage it uses for each of
its steps. Per stage: its identity and folder, its config digest and code digest (the rerun
triggers), every output path, and the resources of each of its jobs (a sharded benchmark's
generation jobs and its merge job included). The Snakemake rules read all of these and hard-code
none.

A stage's **identity** is what determines its outputs: the digest of its config slice and the
identities of the stages it reads. Its folder follows from it (``layout.py``), so two variants with
the same stage share one job and one folder, and a different configuration never writes where
another one's outputs are. Code is not part of the identity: an edit reruns a stage in place (the
code digest is a rerun trigger, not a path).
"""

from __future__ import annotations

import hashlib
import json
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
from llava_core.plan.code_digest import CodeDigest, CodeGraph
from llava_core.plan.stage import KINDS, Stage
from llava_core.plan.variants import SEP, Variant, config_keys, expand, name_variant

#: The function each stage's job runs (its code digest starts there).
ENTRY = {kind: f"llava_core.cli:cmd_{kind}" for kind in (*KINDS, "summary")}

#: A merge job only concatenates shard answers and scores them: a small CPU job.
MERGE_JOB = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 4000, "runtime": 30}
SUMMARY_JOB = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 1000, "runtime": 5}
#: Hex digits of an identity in folder names.
ID_LEN = 12


def benchmark_module(benchmark: str) -> str:
    """The module defining ``benchmark``'s loading and scoring (named from its kit, not imported)."""
    from llava_core.evalkit import KITS

    return f"llava_core.evaluate.benchmarks.{KITS[benchmark].partition(':')[0]}"


@lru_cache(maxsize=1)
def _graph() -> CodeGraph:
    return CodeGraph()


def _digest(entry: str, modules: tuple[str, ...], files: tuple[str, ...]) -> CodeDigest:
    """Code digests, shared by every variant planned in this process (the code is the same; a
    config file read besides the config counts by its size and modification time)."""
    stamps = tuple((f, *(lambda st: (st.st_size, st.st_mtime_ns))(Path(f).stat())) if Path(f).exists() else (f,)
                   for f in files)
    return _cached_digest(entry, modules, stamps)


@lru_cache(maxsize=256)
def _cached_digest(entry: str, modules: tuple[str, ...], stamps: tuple) -> CodeDigest:
    return _graph().digest([entry], modules, [Path(s[0]) for s in stamps])


def stage_code(cfg, stage: Stage, graph: CodeGraph | None = None) -> CodeDigest:
    """The code digest of a stage: its entry function, the ``llava_core`` modules it imports, and
    the config files it reads besides the composed config (a DeepSpeed JSON)."""
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    if stage.kind == "evaluate":
        modules = (benchmark_module(stage.benchmark),)
    if stage.trains and cfg[stage.kind].deepspeed:
        files = (str(config_dir() / "deepspeed" / cfg[stage.kind].deepspeed),)
    if graph is not None:
        return graph.digest([ENTRY[stage.kind]], modules, [Path(f) for f in files])
    return _digest(ENTRY[stage.kind], modules, files)


def job_resources(res: dict) -> dict:
    """Our resources as the Snakemake resources of a job.

    One node: ``gpu`` (``sbatch --gpus=N``; also limits local runs given ``--resources gpu=N``).
    Several nodes: ``gres`` (``--gres=gpu:N`` is per node; ``--gpus`` would count the whole job).
    """
    multi = res["nodes"] > 1
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "nodes": res["nodes"],
            "cpus_per_task": res["cpus"], "threads": res["cpus"],
            "gpu": 0 if multi else res["gpus"], "gres": f"gpu:{res['gpus']}" if multi and res["gpus"] else ""}


def upstream(stage: Stage, keys: set[str]) -> list[str]:
    """The stages whose outputs ``stage`` reads (those of the variant's ``keys``)."""
    reads = {"synthesize": (), "download": ("synthesize",), "instruct": ("download",),
             "filter": ("download", "instruct"), "pretrain": ("filter",), "finetune": ("filter", "pretrain"),
             "import": ("download",), "evaluate": ("download", "finetune", "import")}
    if stage.kind == "report":
        return sorted(k for k in keys if k != "report")
    return [k for k in reads[stage.kind] if k in keys]


def identities(cfg) -> dict[str, str]:
    """Stage key -> identity: the digest of the stage's config slice and its upstream identities."""
    ids: dict[str, str] = {}
    all_stages = stages(cfg)
    keys = {st.key for st in all_stages}
    for st in all_stages:  # in DAG order: upstream first
        payload = {"config": config_hash(stage_config(cfg, st)), "reads": {k: ids[k] for k in upstream(st, keys)}}
        ids[st.key] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:ID_LEN]
    return ids


def dataset_folder(cfg, ids: dict[str, str], preset_ids: dict[str, str]) -> str:
    """The dataset folder's name: the dataset's name, or ``<name>+<id>`` where the variant changes
    what is downloaded (its download identity is not its preset's)."""
    if ids["download"] == preset_ids.get("download"):
        return cfg.data.name
    return f"{cfg.data.name}{SEP}{ids['download'][:8]}"


def _stage_entry(cfg, st: Stage, sid: str, results: str, dataset: str, variant: str) -> dict:
    where = {"dataset": dataset, "variant": variant}
    out_dir = layout.stage_dir(results, st, sid, **where)
    sc = stage_config(cfg, st)
    code = stage_code(cfg, st)
    res = stage_resources(cfg, st)
    entry = {"kind": st.kind, "benchmark": st.benchmark, "key": st.key, "id": sid, "slug": st.slug,
             "dataset": dataset, "config_digest": config_hash(sc), "code_digest": code.digest,
             "code_modules": list(code.modules), "dir": out_dir, "outputs": layout.outputs(st.kind, out_dir),
             "log": layout.log_file(results, st.kind, st, sid, **where),
             "benchmark_file": layout.log_file(results, st.kind, st, sid, folder="benchmarks", ext=".tsv", **where),
             "resources": res, "jobs": {st.kind: job_resources(res)}}
    if st.kind == "evaluate":
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


def plan_variant(cfg, variant: Variant, preset_cfg, results: str = "results") -> dict:
    """One variant: its description and the entries of its stages (key -> stage entry)."""
    results = results.rstrip("/") or "."
    ids = identities(cfg)
    preset_ids = ids if preset_cfg is cfg else identities(preset_cfg)
    dataset = dataset_folder(cfg, ids, preset_ids)
    entries = {}
    for st in stages(cfg):
        sid = variant.name if st.kind == "report" else ids[st.key]
        entries[st.key] = _stage_entry(cfg, st, sid, results, dataset, variant.name)
    return {"name": variant.name, "preset": variant.preset, "group": variant.group, "sweep": variant.sweep,
            "axes": dict(variant.axes), "overrides": list(variant.overrides), "named_by": list(variant.named_by),
            "dataset": dataset, "data_name": cfg.data.name, "synthetic": cfg.data.synthetic is not None,
            "released": cfg.get("released") is not None, "benchmarks": list(cfg.evaluation.benchmarks),
            "paper_row": cfg.paper_row, "dir": layout.variant_dir(results, variant.name),
            # what variants sharing the dataset folder must agree on: its sources and its generated part
            "dataset_config": {**stage_config(cfg, "download"), **stage_config(cfg, "instruct")["data"]},
            "stages": entries}


def job_key(entry: dict) -> str:
    """A stage's job, named by its kind and folder (download and synthesize share a dataset folder)."""
    return f"{entry['kind']}:{entry['dir']}"


def compose_variants(presets: list[str], overrides: list[str], sweep: str | None = None) -> list[tuple]:
    """``(variant, cfg, preset_cfg)`` of every variant asked for, named, duplicates (same name)
    dropped; each preset composed once without overrides (its variants are named against it)."""
    plain: dict[str, object] = {}
    keys: dict[str, frozenset[str]] = {}  # each preset's dotted keys, walked once for all its variants
    out, seen = [], set()
    for v in expand(list(presets), list(overrides), sweep, config_dir() / "sweeps"):
        if v.preset not in plain:
            plain[v.preset] = load_experiment(v.preset)
        cfg = load_experiment(v.preset, list(v.overrides)) if v.overrides else plain[v.preset]
        if v.overrides and v.preset not in keys:
            keys[v.preset] = config_keys(plain[v.preset])
        named = name_variant(v, cfg, plain[v.preset], keys.get(v.preset))
        if named.name not in seen:
            seen.add(named.name)
            out.append((named, cfg, plain[v.preset]))
    return out


def plan_all(presets: list[str], overrides: list[str] | tuple[str, ...] = (), sweep: str | None = None,
             results: str = "results") -> dict:
    """Every variant of ``presets`` x ``sweep`` (with ``overrides`` applied to each), planned in one
    process: ``variants`` (name -> variant, in order; its ``stages`` map each step to a job key),
    ``stages`` (job key ``<kind>:<folder>`` -> entry, each stage once, with ``owner``: the first
    variant using it, whose config its job composes, and ``users``), ``summary`` and ``layout``
    (the rules' patterns)."""
    results = results.rstrip("/") or "."
    variants, shared = {}, {}
    for variant, cfg, preset_cfg in compose_variants(presets, list(overrides), sweep):
        p = plan_variant(cfg, variant, preset_cfg, results)
        for key, entry in p["stages"].items():
            have = shared.setdefault(job_key(entry), {**entry, "owner": variant.name, "users": []})
            if (have["kind"], have["config_digest"]) != (entry["kind"], entry["config_digest"]):
                raise ValueError(f"variants {have['owner']!r} and {variant.name!r} would write different "
                                 f"{key} stages into {entry['dir']}; give one of them another data.name")
            have["users"].append(variant.name)
        p["stages"] = {key: job_key(entry) for key, entry in p["stages"].items()}
        variants[variant.name] = p
    summary_code = _digest(ENTRY["summary"], (), ())
    return {"results": results, "variants": variants, "stages": shared,
            "summary": {"code_digest": summary_code.digest, "code_modules": list(summary_code.modules),
                        "jobs": {"summary": job_resources(SUMMARY_JOB)},
                        "outputs": layout.outputs("summary", results), "log": f"{results}/logs/summary.log",
                        "benchmark_file": f"{results}/benchmarks/summary.tsv"},
            "layout": _patterns(results)}


def plan(name: str, overrides: list[str] | tuple[str, ...] = (), results: str = "results") -> dict:
    """One variant's plan: ``stages`` holds the entry of each of its stages, by key."""
    p = plan_all([name], overrides, None, results)
    (variant,) = p["variants"].values()
    return {**variant, "experiment": name, "stages": {k: p["stages"][j] for k, j in variant["stages"].items()},
            "summary": p["summary"], "layout": p["layout"]}


def _patterns(results: str) -> dict:
    """Every job's output patterns, with Snakemake wildcards: ``{dataset}``, ``{sid}``,
    ``{benchmark}``, ``{variant}`` (and ``{shard}``/``{n}``)."""
    wild = {"dataset": "{dataset}", "variant": "{variant}"}
    out = {}
    for kind in KINDS:
        stage = Stage.evaluate("{benchmark}") if kind == "evaluate" else Stage(kind)
        base = layout.stage_dir(results, stage, "{sid}", **wild)
        out[kind] = {"outputs": layout.outputs(kind, base), "folders": list(layout.FOLDERS.get(kind, ())),
                     "dir": base, "log": layout.log_file(results, kind, stage, "{sid}", **wild),
                     "benchmark": layout.log_file(results, kind, stage, "{sid}", folder="benchmarks", ext=".tsv",
                                                  **wild)}
        if kind == "evaluate":
            suffix = ".shard{shard}_of_{n}"
            out["evaluate_shard"] = {
                "outputs": layout.outputs("evaluate_shard", base), "folders": [], "dir": base,
                "log": layout.log_file(results, "evaluate_shard", stage, "{sid}", suffix=suffix),
                "benchmark": layout.log_file(results, "evaluate_shard", stage, "{sid}", suffix=suffix,
                                             folder="benchmarks", ext=".tsv")}
    out["summary"] = {"outputs": layout.outputs("summary", results), "folders": [], "dir": results,
                      "log": f"{results}/logs/summary.log", "benchmark": f"{results}/benchmarks/summary.tsv"}
    return out


__all__ = ["ENTRY", "MERGE_JOB", "SMALL_JOB", "compose_variants", "identities", "job_resources", "plan", "plan_all",
           "plan_variant", "stage_code"]
