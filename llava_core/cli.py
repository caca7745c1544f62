"""``llava-core``: one subcommand per pipeline stage, plus config inspection and scoring.

Every Snakemake rule calls one of these; each can be run by hand with the same arguments.
Stage commands take the experiment name and Hydra overrides (``-o key=value``), compose the
config, write it beside their outputs and call one function.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from llava_core.config.compose import (
    ConfigError,
    load_experiment,
    stage_config,
    stage_resources,
    stage_seed,
    to_dict,
)
from llava_core.io import FormatError, write_json
from llava_core.plan.layout import default_dir
from llava_core.plan.stage import Stage

log = logging.getLogger("llava_core")


# ----------------------------------------------------------------------------- helpers
def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("httpx", "urllib3", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(args) -> object:
    """Compose the experiment: from ``--job FILE`` (the workflow's: preset, overrides, variant), or
    the positional preset; overrides from --overrides-file come first, then each -o. Sets
    ``args.variant``, the variant's name (``plan/variants.py``)."""
    from llava_core.io import read_json

    if getattr(args, "job", None):
        spec = read_json(args.job)
        if not isinstance(spec, dict) or not {"experiment", "overrides", "variant"} <= set(spec):
            raise FormatError(args.job, None, "expected a job file with experiment, overrides and variant",
                              "the workflow writes these under <results>/.jobs/")
        args.experiment, args.variant, args.job_spec = spec["experiment"], spec["variant"], spec
        args.override = [*spec["overrides"], *args.override]
    if getattr(args, "overrides_file", None):
        listed = read_json(args.overrides_file)
        if not isinstance(listed, list) or not all(isinstance(o, str) for o in listed):
            raise FormatError(args.overrides_file, None, "expected a JSON list of KEY=VALUE strings")
        args.override = [*listed, *args.override]
    if not args.experiment:
        raise ConfigError("name an experiment preset (e.g. tiny) or give --job FILE")
    cfg = load_experiment(args.experiment, args.override)
    if not getattr(args, "variant", None):
        from llava_core.plan.variants import Variant, name_variant

        preset_cfg = load_experiment(args.experiment) if args.override else cfg
        args.variant = name_variant(Variant(args.experiment, tuple(args.override)), cfg, preset_cfg).name
    return cfg


def _write_resolved(cfg, out_dir: Path, stage: Stage, overrides: list[str]) -> None:
    """The resolved config of a stage, beside its outputs (what ran, exactly)."""
    from omegaconf import OmegaConf

    from llava_core.io import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "config.yaml") as fh:
        fh.write(f"# llava-core {stage}: experiment {cfg.name}, overrides {overrides}\n")
        fh.write(OmegaConf.to_yaml(cfg))
    write_json(out_dir / "stage_config.json", stage_config(cfg, stage))


def _parent_config(cfg) -> dict:
    """What identifies an experiment configuration: all of it but where data and runs are kept."""
    whole = to_dict(cfg)
    # Where data comes from (mirror, base URL) is not part of what an experiment is.
    whole["data"] = stage_config(cfg, Stage("filter"))["data"] | {"resources": whole["data"]["resources"]}
    # A released checkpoint trains nothing here: its parent carries no (unused) training settings,
    # so MLflow's compare page does not show them beside a reproduction's.
    unused = ("tracking", "pretrain", "finetune") if whole.get("released") is not None else ("tracking",)
    return {k: v for k, v in whole.items() if k not in unused}


def _run(cfg, stage: Stage, args, exp_dir: Path | None, run_name: str | None = None,
         record_dir: Path | None = None):
    """The MLflow child run of a stage, recorded in ``record_dir`` (its folder, where the variants
    sharing it find it). Experiment stages nest under their variant's parent run, named after the
    variant and carrying its whole resolved config, sweep axes and group; dataset stages nest under a
    ``data:<name>`` parent carrying the data config."""
    from llava_core.tracking import stage_run, variant_label

    params = {**stage_config(cfg, stage), "overrides": list(args.override)}
    parent = _parent_config(cfg)
    if run_name:
        return stage_run(cfg, stage, args.results, exp_dir, params, run_name=run_name,
                         parent_config={"data": parent["data"]}, record_dir=record_dir)
    note = ""
    if args.override:  # compose the preset alone only when something may differ from it
        _, note = variant_label(cfg.name, parent, _parent_config(load_experiment(args.experiment)),
                                list(args.override))
    spec = getattr(args, "job_spec", None) or {}
    tags = {"llava.variant": args.variant, "llava.preset": cfg.name, "llava.group": spec.get("group", args.variant)}
    if spec.get("sweep"):
        tags["llava.sweep"] = spec["sweep"]
    axes = {f"sweep.{k}": v for k, v in (spec.get("axes") or {}).items()}
    return stage_run(cfg, stage, args.results, exp_dir, params, run_name=args.variant, parent_config=parent,
                     parent_label=args.variant, parent_note=note, parent_tags=tags, parent_params=axes,
                     record_dir=record_dir)


def _exp_dir(args, cfg) -> Path:
    """The variant's folder: its report, and the record of its MLflow parent run."""
    return Path(args.results) / args.variant


# ----------------------------------------------------------------------------- commands
def cmd_config(args) -> int:
    cfg = _load(args)
    if args.stage is None:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    stage = Stage.parse(args.stage)
    out = {"experiment": cfg.name, "stage": stage.key, "config": stage_config(cfg, stage),
           "resources": stage_resources(cfg, stage)}
    if stage.trains:
        from llava_core.train.arguments import deepspeed_config, training_arguments
        from llava_core.train.lora import lora_view

        st = cfg[stage.kind]
        res = st.resources
        world = max(1, res.gpus) * res.nodes
        targs = training_arguments(st, world_size=world, output_dir=f"<results>/{cfg.name}/{stage.key}/checkpoints",
                                   seed=stage_seed(cfg, stage.kind), on_gpu=res.gpus > 0)
        targs.pop("deepspeed")
        out.update({
            "world_size": world,
            "training_arguments": targs,
            "global_batch_size": st.global_batch_size,
            "deepspeed": deepspeed_config(st.deepspeed),
            "lora": lora_view(st.lora) if st.tune == "lora" else None,
            "projector_lr": st.projector_lr,
            "model": {"vision_tower": cfg.model.vision_tower, "llm": cfg.model.llm,
                      "projector_type": cfg.model.projector_type,
                      "vision_feature_layer": cfg.model.vision_feature_layer,
                      "image_aspect_ratio": st.image_aspect_ratio, "conversation_template": st.template,
                      "model_max_length": cfg.model.model_max_length},
        })
    print(json.dumps(out, indent=2))
    return 0


def cmd_plan(args) -> int:
    """Every variant of the presets (comma-separated) x the sweep, planned in one process."""
    from llava_core.plan.build import plan_all

    if getattr(args, "overrides_file", None):
        from llava_core.io import read_json

        args.override = [*read_json(args.overrides_file), *args.override]
    presets = [p.strip() for p in (args.experiment or "").split(",") if p.strip()]
    if not presets:
        raise ConfigError("name at least one experiment preset (e.g. tiny, or tiny,llava-v1.5-7b)")
    print(json.dumps(plan_all(presets, args.override, args.sweep, results=args.results)))
    return 0


def cmd_synthesize(args) -> int:
    from llava_core.model.export import TINY_RELEASES, write_tiny_releases
    from llava_core.model.tiny import build_tiny_parts
    from llava_core.synthetic import generate_world, package_mirror
    from llava_core.synthetic.mirror import MIRROR_PARTS

    cfg = _load(args)
    syn = cfg.data.synthetic
    if syn is None:
        raise ConfigError(f"experiment {cfg.name!r} uses dataset {cfg.data.name!r}, which is not synthetic")
    out = Path(args.out)
    world = out / "world"
    summary = generate_world(world, seed=syn.seed, image_size=syn.image_size, n_pretrain=syn.n_pretrain,
                             n_finetune=syn.n_finetune, n_eval=syn.n_eval, records_per_image=syn.records_per_image)
    build_tiny_parts(world / "models", _tokenizer_corpus(world, summary["corpus"]), syn, seed=syn.seed)
    releases: tuple[str, ...] = ()
    if syn.llm.family == "llama" and syn.vision.tower == "clip":
        # Stand-ins of the released checkpoints, for the tiny-released presets (original and llava-hf
        # layouts; the original layout is a Llama + CLIP one).
        write_tiny_releases(world, cfg.model, seed=syn.seed + 1)
        releases = tuple(TINY_RELEASES)
    sources = package_mirror(world, out, parts=(*MIRROR_PARTS, "models", *releases))
    shutil.rmtree(world)  # the archives are the product; the unpacked copy would double the disk use
    log.info("tiny world: %s", json.dumps(summary["counts"]))
    print(json.dumps({"mirror": str(out), "sources": sources}, indent=2))
    return 0


def _tokenizer_corpus(world: Path, distinct: list[str]) -> list[str]:
    """Texts with their real frequencies (BPE merges follow counts), plus each distinct text once."""
    from llava_core.data.conversation import render
    from llava_core.data.formats import read_llava_records

    texts = list(distinct)
    for rec in read_llava_records(world / "finetune" / "llava_v1_5_mix665k.json"):
        texts.append(render("vicuna_v1", rec["conversations"], has_image="image" in rec).text.replace("<image>", ""))
    for rec in read_llava_records(world / "pretrain" / "blip_laion_cc_sbu_558k.json"):
        texts.append(rec["conversations"][1]["value"])
    return texts


def cmd_download(args) -> int:
    from llava_core.prepare.download_stage import run_download

    cfg = _load(args)
    data_dir = Path(args.data_dir)
    with _run(cfg, Stage("download"), args, data_dir, run_name=f"data:{data_dir.name}") as run:
        summary = run_download(cfg, data_dir, run, workers=args.workers, mirror=args.mirror, base_url=args.base_url)
    _write_resolved(cfg, data_dir / "config", Stage("download"), args.override)
    # The job's output: a summary of what was verified. The lock itself is not a Snakemake output,
    # so a rerun of this job finds it (Snakemake deletes a job's outputs before running it).
    write_json(Path(args.out) if args.out else data_dir / "download.json", summary)
    return 0


def cmd_instruct(args) -> int:
    from llava_core.config.compose import instruct_enabled
    from llava_core.prepare.instruct.stage import run_instruct

    cfg = _load(args)
    if not instruct_enabled(cfg):
        raise ConfigError(f"experiment {cfg.name!r} does not regenerate LLaVA-Instruct: set "
                          "data.instruct.generate.enabled=true (and data.instruct, see docs/instruct.md)")
    data_dir = Path(args.data_dir)
    out = Path(args.out or default_dir(str(data_dir), "instruct"))
    with _run(cfg, Stage("instruct"), args, data_dir, run_name=f"data:{data_dir.name}", record_dir=out) as run:
        run_instruct(cfg, data_dir, run, out_dir=out, base_url=args.base_url, workers=args.workers)
    _write_resolved(cfg, out, Stage("instruct"), args.override)
    return 0


def cmd_filter(args) -> int:
    from llava_core.prepare.filter_stage import run_filter

    cfg = _load(args)
    data_dir = Path(args.data_dir)
    out = Path(args.out or default_dir(str(data_dir), "filter"))
    instruct = Path(args.instruct or default_dir(str(data_dir), "instruct"))
    with _run(cfg, Stage("filter"), args, data_dir, run_name=f"data:{data_dir.name}", record_dir=out) as run:
        run_filter(cfg, data_dir, run, out_dir=out, instruct_dir=instruct, workers=args.workers or cfg.data.filter.workers)
        run.finish_parent()
    _write_resolved(cfg, out, Stage("filter"), args.override)
    return 0


def cmd_pretrain(args) -> int:
    from llava_core.train.runner import save_stage1

    return _train(args, Stage("pretrain"), save_stage1)


def cmd_finetune(args) -> int:
    from llava_core.train.finetune_outputs import save_stage2

    return _train(args, Stage("finetune"), save_stage2)


def _train(args, stage: Stage, save_outputs) -> int:
    """Run a training stage; ``save_outputs`` writes its trained model (see ``train_stage``)."""
    from llava_core.plan.layout import outputs
    from llava_core.train.callbacks import abort_at_exit
    from llava_core.train.launch import NullRun, is_main_process, maybe_launch
    from llava_core.train.runner import train_stage

    cfg = _load(args)
    out = Path(args.out)
    if "LOCAL_RANK" not in os.environ:  # once, before any worker starts
        from llava_core.train.runner import reset_stale_checkpoints

        reset_stale_checkpoints(out / "checkpoints", stage_config(cfg, stage))
    if not args.no_launch:
        # more than one GPU or node: under torchrun, with the exit status checked against the outputs
        status = maybe_launch(args, cfg[stage.kind].resources, outputs(stage.kind, str(out)))
        if status is not None:
            return status
    init = Path(args.init) if getattr(args, "init", None) else None
    filtered = Path(args.filtered or default_dir(args.data_dir, "filter"))
    records = Path(outputs("filter", str(filtered))[f"{stage.kind}_index"])
    if not is_main_process():  # torchrun workers: rank 0 alone writes the config and the MLflow run
        train_stage(cfg, stage.kind, data_dir=Path(args.data_dir), out_dir=out, run=NullRun(),
                    save_outputs=save_outputs, init_dir=init, records_path=records)
        abort_at_exit()
        return 0
    _write_resolved(cfg, out, stage, args.override)
    with _run(cfg, stage, args, _exp_dir(args, cfg), record_dir=out) as run:
        from llava_core.train.dataset_input import log_training_dataset

        log_training_dataset(run, cfg, filtered, stage.kind)
        train_stage(cfg, stage.kind, data_dir=Path(args.data_dir), out_dir=out, run=run,
                    save_outputs=save_outputs, init_dir=init, records_path=records)
        run.log_artifact(out / "config.yaml")
        run.log_artifact(out / "metrics.json")
    abort_at_exit()
    return 0


def cmd_evaluate(args) -> int:
    from llava_core.evaluate.run import evaluate_benchmark

    cfg = _load(args)
    stage = Stage.evaluate(args.benchmark)
    stage_config(cfg, stage)  # an unlisted benchmark stops here, with the listed ones named
    out = Path(args.out)
    eval_root = Path(args.eval_root) if args.eval_root else Path(args.data_dir) / cfg.data.eval_root
    if args.shard:  # one generation job of a sharded benchmark: answers only, no scoring or MLflow run
        from llava_core.evaluate.generate import parse_shard
        from llava_core.evaluate.run import answer_shard

        k, n = parse_shard(args.shard)
        path = answer_shard(cfg, args.benchmark, model_dir=Path(args.model), eval_root=eval_root, out_dir=out,
                            shard=k, num_shards=n)
        log.info("%s: shard %d/%d answers in %s", args.benchmark, k, n, path)
        return 0
    _write_resolved(cfg, out, stage, args.override)
    with _run(cfg, stage, args, _exp_dir(args, cfg), record_dir=out) as run:
        res = evaluate_benchmark(cfg, args.benchmark, model_dir=Path(args.model), eval_root=eval_root,
                                 out_dir=out, run=run, merge_shards_n=args.merge_shards)
        run.log_artifact(out / "config.yaml")
    log.info("%s: score %.2f", args.benchmark, res["score"])
    return 0


def cmd_score(args) -> int:
    from llava_core.data.formats import read_answers
    from llava_core.evaluate.benchmarks import get_benchmark

    bench = get_benchmark(args.benchmark)
    answers = read_answers(args.answers)
    out_dir = Path(args.out) if args.out else Path(args.answers).parent
    res = bench.score(Path(args.eval_root), answers, out_dir=out_dir,
                      reviews=[Path(r) for r in args.reviews] if args.reviews else None)
    print(json.dumps({"benchmark": bench.name, **res.to_dict()}, indent=2))
    return 0


def _tiny_note(scores: dict[str, dict], released: bool = False) -> str:
    """The tiny report's note: which benchmarks the run put above chance, and why the others are not."""
    above = [s["title"] for s in scores.values() if s.get("chance") is not None and s["score"] > s["chance"]]
    rest = [s["title"] for s in scores.values() if s["title"] not in above]
    if released:  # the tiny world's stand-in for released weights: random, never trained
        return ("The tiny world's stand-in for a released checkpoint: a random, untrained tiny LLaVA, fetched, "
                "imported and evaluated as a release would be. Its scores check the import and the evaluation "
                f"path, not a model. Above chance: {', '.join(above) or 'none'}.")
    note = ("A tiny, randomly initialised LLaVA trained on the synthetic world: not comparable with the paper. "
            f"Above chance: {', '.join(above) or 'none'}.")
    if rest:
        note += (f" At or below chance: {', '.join(rest)}. Where the question or the options must be compared "
                 "with the image (POPE, MME, the option letters), a model trained from scratch needs more steps "
                 "than the tiny run has (docs/evaluation.md).")
    return note


def _variant_stages(args) -> dict[str, str]:
    """Stage key -> folder of every stage the variant uses: from the workflow's job file, else
    planned here (a report run by hand)."""
    spec = getattr(args, "job_spec", None) or {}
    if "stages" in spec:
        return dict(spec["stages"])
    from llava_core.plan.build import plan_all

    p = plan_all([args.experiment], args.override, None, results=str(args.results))
    (variant,) = p["variants"].values()
    return {key: p["stages"][job]["dir"] for key, job in variant["stages"].items()}


def cmd_report(args) -> int:
    from llava_core.evaluate.report import link_stages, read_group_scores, write_report
    from llava_core.io import read_json
    from llava_core.plan.layout import outputs

    cfg = _load(args)
    out = Path(args.out)
    dirs = _variant_stages(args)
    scores = {}
    for bench in cfg.evaluation.benchmarks:
        folder = str(Path(args.eval_dir) / bench) if args.eval_dir else dirs[f"eval/{bench}"]
        scores[bench] = read_json(outputs("evaluate", folder)["scores"])
    spec = getattr(args, "job_spec", None) or {}
    group = read_group_scores(spec.get("group_scores") or {})  # the seeds of this configuration, if any
    _write_resolved(cfg, out / "report_config", Stage("report"), args.override)
    write_json(out / "report_config" / "variant.json",
               {"variant": args.variant, "preset": cfg.name, "group": spec.get("group", args.variant),
                "sweep": spec.get("sweep", ""), "axes": spec.get("axes", {}), "overrides": list(args.override),
                "reference_row": cfg.get("reference_row")})
    with _run(cfg, Stage("report"), args, _exp_dir(args, cfg)) as run:
        note = _tiny_note(scores, released=cfg.get("released") is not None) if cfg.data.get("synthetic") else ""
        rows = write_report(args.variant, cfg.paper_row, scores, out, note=note,
                            group=(spec.get("group", ""), group) if len(group) > 1 else None)
        _report_figures(cfg, out, dirs, args.variant)
        stage_runs = link_stages(out, {k: d for k, d in dirs.items() if k != "report"})
        run.link_stage_runs(stage_runs)
        run.log_metrics({f"report/{r['benchmark']}/{k}": r[k] for r in rows for k in ("delta", "above_chance")
                         if r[k] is not None})
        for name in ("report.md", "report.csv", "report.png"):
            run.log_artifact(out / name)
            run.log_artifact_on_parent(out / name)
        run.finish_parent()
    print((out / "report.md").read_text())
    return 0


def _report_figures(cfg, out: Path, dirs: dict[str, str], title: str) -> None:
    """The rest of the report's outputs (``snakemake --report``): each training stage's loss and
    learning-rate curves from its ``metrics.json``, and the filter manifest's kept/dropped counts.
    An input that is missing (a report of scores from elsewhere) is skipped, said so."""
    from llava_core.evaluate.curves import plot_training_curves
    from llava_core.evaluate.data_summary import write_data_summary
    from llava_core.io import read_json
    from llava_core.plan.layout import outputs
    from llava_core.plan.stage import TRAIN_KINDS

    mine = outputs("report", str(out))
    if cfg.get("released") is not None:  # evaluated as released: nothing was trained or filtered here
        from llava_core.evaluate.curves import plot_note
        from llava_core.io import atomic_write

        for kind in TRAIN_KINDS:
            plot_note(f"{title} {kind}", "a released checkpoint, evaluated as it is: not trained here",
                      Path(mine[f"{kind}_curves"]))
        with atomic_write(mine["data_summary"]) as fh:
            fh.write("count\n")
        return
    for kind in TRAIN_KINDS:
        metrics = Path(outputs(kind, dirs[kind])["metrics"]) if kind in dirs else None
        if metrics is not None and metrics.is_file():
            plot_training_curves(read_json(metrics), f"{title} {kind}", Path(mine[f"{kind}_curves"]))
        else:
            log.warning("report: no %s, so no %s curves", metrics, kind)
    manifest = Path(outputs("filter", dirs["filter"])["manifest"]) if "filter" in dirs else None
    if manifest is not None and manifest.is_file():
        write_data_summary(read_json(manifest), Path(mine["data_summary"]))
    else:
        log.warning("report: no %s, so no data summary", manifest)


def _plan_of_args(args) -> dict:
    """``plan_all`` of the presets (comma-separated), overrides and sweep a command was given."""
    from llava_core.plan.build import plan_all

    presets = [p.strip() for p in (args.experiment or "").split(",") if p.strip()]
    if not presets:
        raise ConfigError("name the experiment presets whose variants to keep (e.g. tiny,llava-v1.5-7b)")
    return plan_all(presets, args.override, args.sweep, results=str(args.results))


def cmd_runs(args) -> int:
    """List the variants, the stage folders each uses, their sizes and status."""
    from llava_core.plan.inventory import human, runs_table

    rows = runs_table(_plan_of_args(args))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        print(f"{name}  (group {mine[0]['group']})")
        for r in mine:
            shared = f", shared by {r['shared_by']} variants" if r["shared_by"] > 1 else ""
            print(f"  {r['stage']:<18} {r['status']:<9} {human(r['bytes']):>9}  {r['dir']}{shared}")
    return 0


def cmd_gc(args) -> int:
    """List (and with --yes delete) the stage and variant folders no listed variant uses."""
    from llava_core.plan.inventory import collect, delete, human, snakemake_locked

    results = Path(args.results)
    found = collect(_plan_of_args(args), results, list(args.keep))
    for cand, size in found:
        print(f"{human(size):>9}  {cand.kind:<9} {cand.path}")
    total = sum(size for _, size in found)
    print(f"{len(found)} folders no listed variant uses, {human(total)}")
    if not found or not args.yes:
        if found:
            print("nothing deleted: run again with --yes to delete them")
        return 0
    if snakemake_locked(Path(args.workdir)):
        print(f"llava-core gc: error: Snakemake holds the lock of {Path(args.workdir).resolve()} "
              "(.snakemake/locks): a running job's outputs may look unused; nothing deleted", file=sys.stderr)
        return 1
    print(f"deleted {len(found)} folders, freed {human(delete(found))}")
    return 0


def cmd_mlflow_sync(args) -> int:
    """Replay tracking calls recorded while the MLflow server was unreachable."""
    from llava_core.tracking import pending_journals, sync_journal

    journals = pending_journals(args.results)
    synced = sum(sync_journal(j) for j in journals)
    print(json.dumps({"pending": len(journals), "synced": synced}))
    return 0 if synced == len(journals) else 1


def cmd_summary(args) -> int:
    from llava_core.evaluate.report import write_summary

    write_summary({Path(p).parent.name: Path(p) for p in args.reports}, Path(args.out))
    print(Path(args.out).read_text())
    return 0


def cmd_inspect(args) -> int:
    from llava_core.data.inspect import inspect_records

    for row in inspect_records(args.records, args.template, args.tokenizer, args.max_length, args.num_image_tokens,
                               args.truncation):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def cmd_import(args) -> int:
    from llava_core.model.released import run_import

    cfg = _load(args)
    if cfg.get("released") is None:
        raise ConfigError(f"experiment {cfg.name!r} trains its model; `import` is for presets with released: "
                          "(e.g. llava-v1.5-7b-released)")
    out = Path(args.out)
    with _run(cfg, Stage("import"), args, _exp_dir(args, cfg), record_dir=out) as run:
        run_import(cfg, Path(args.data_dir), out, run, base_url=args.base_url, workers=args.workers)
    _write_resolved(cfg, out, Stage("import"), args.override)
    return 0


def final_model(args) -> tuple[Path, object]:
    """The final model of the experiment or variant ``args`` name (stage 2's, or the imported
    release's) and the variant's config; an error that says how to make it when it is missing."""
    from llava_core.plan.build import plan_all

    cfg = _load(args)
    p = plan_all([args.experiment], args.override, None, results=str(args.results))
    (variant,) = p["variants"].values()
    key = "import" if "import" in variant["stages"] else "finetune"
    model = Path(p["stages"][variant["stages"][key]]["outputs"]["model"])
    if not (model / "config.json").is_file():
        raise FileNotFoundError(f"{model}: {variant['name']!r} has no final model yet; train it first "
                                f"(snakemake --cores 2 --config experiments={args.experiment} ...), or give --model DIR")
    return model, cfg


def _session(args, model_dir: Path | None = None, cfg=None):
    """A chat session on ``--model`` (or the experiment's final model) with the evaluation's settings."""
    from llava_core.data.chat_template import has_chat_template
    from llava_core.evaluate.run import load_for_eval
    from llava_core.serve.session import ChatSession, Sampling

    if model_dir is None:
        model_dir, cfg = (Path(args.model), None) if args.model else final_model(args)
    ev = cfg.evaluation if cfg is not None else None
    quant = "8bit" if args.load_8bit else "4bit" if args.load_4bit else (ev.quantization if ev else "none")
    dtype = args.dtype or (ev.dtype if ev else "auto")
    parts = load_for_eval(model_dir, dtype, quant)
    template = args.template or (cfg.model.conversation_template if cfg is not None else
                                 "chat" if has_chat_template(parts.tokenizer) else "vicuna_v1")
    sampling = Sampling(args.temperature, args.top_p, args.max_new_tokens)
    session = ChatSession(parts, template, ev.image_aspect_ratio if ev else "pad", sampling)
    return session, f"{model_dir} ({template} template, {dtype}, quantization {quant})"


def cmd_chat(args) -> int:
    from llava_core.serve.terminal import answer, interact

    if not args.model and not args.experiment:
        raise ConfigError("name an experiment (e.g. tiny) or give --model DIR")
    session, banner = _session(args)
    if args.image:
        session.set_image(args.image)
    if args.ask:  # for scripts: each answer on its own, the turns chained
        for question in args.ask:
            answer(session, question, sys.stdout, stream=False)
    else:
        print(f"llava-core chat: {banner}")
        interact(session)
    if args.save:
        print(f"(saved {session.save(args.save)})")
    return 0


def cmd_demo(args) -> int:
    try:
        from llava_core.serve.demo import ModelChoice, Models, discover, serve
    except ImportError as e:
        raise ValueError(f"the demo needs Gradio ({e}): pip install 'llava-core[demo]'") from None

    choices = discover(Path(args.results))
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not (Path(path) / "config.json").is_file():
            raise ValueError(f"--model {spec!r}: expected NAME=DIR, DIR a model folder with config.json")
        choices.append(ModelChoice(name, Path(path), args.template))
    if not choices:
        raise FileNotFoundError(f"{args.results}: no variant with a final model yet (run snakemake first), "
                                "and no --model NAME=DIR")
    quant = "8bit" if args.load_8bit else "4bit" if args.load_4bit else "none"
    serve(Models(choices, args.dtype or "auto", quant), args.host, args.port)
    return 0


def cmd_import_checkpoint(args) -> int:
    from llava_core.model.checkpoints import import_llava_hf, import_original

    if args.layout == "original":
        out = import_original(args.src, args.out, vision_tower=args.vision_tower)
    else:
        if args.vision_tower:
            raise ValueError("--vision-tower only applies to --layout original")
        out = import_llava_hf(args.src, args.out)
    print(json.dumps({"checkpoint": str(out), "layout": args.layout}))
    return 0


# ----------------------------------------------------------------------------- parser
def _model_flags(sp: argparse.ArgumentParser) -> None:
    """How chat and demo load and ask a model (defaults: the experiment's evaluation settings)."""
    sp.add_argument("--model", help="a model folder instead of the experiment's (ours, or an imported release)")
    sp.add_argument("--template", help="conversation template (default: the experiment's; with --model: chat if "
                    "the tokenizer has a chat template, else vicuna_v1)")
    sp.add_argument("--dtype", choices=("fp16", "bf16", "fp32", "auto"),
                    help="default: evaluation.dtype of the experiment (auto with --model)")
    quant = sp.add_mutually_exclusive_group()
    quant.add_argument("--load-8bit", action="store_true", help="LLM.int8() through bitsandbytes")
    quant.add_argument("--load-4bit", action="store_true", help="NF4 through bitsandbytes")
    sp.add_argument("--temperature", type=float, default=0.0, help="0: greedy, as the evaluation (default)")
    sp.add_argument("--top-p", type=float, default=1.0)
    sp.add_argument("--max-new-tokens", type=int, default=512)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llava-core", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def exp_cmd(name: str, help_: str, fn, results: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("experiment", nargs="?", help="preset name, e.g. tiny or llava-v1.5-7b")
        sp.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="Hydra override, e.g. finetune.learning_rate=1e-4 (repeatable)")
        sp.add_argument("--overrides-file", metavar="JSON",
                        help="a JSON list of overrides applied before -o")
        sp.add_argument("--job", metavar="JSON", help="the workflow's job file: preset, overrides and variant "
                        "(instead of the positional preset)")
        if results:
            sp.add_argument("--results", default="results", help="results folder (MLflow store, experiment dirs)")
        sp.set_defaults(fn=fn)
        return sp

    sp = exp_cmd("config", "print the resolved config (of one stage) as JSON", cmd_config, results=False)
    sp.add_argument("--stage", help="download, filter, pretrain, finetune, eval/<benchmark> or report")
    sp = exp_cmd("plan", "print every variant and every stage (identity, folder, config and code digests, "
                 "outputs, job resources) of the presets (comma-separated) and a sweep, for the workflow", cmd_plan)
    sp.add_argument("--sweep", help="axes KEY=V1,V2 (space-separated; a grid), or a file under config/sweeps/")
    sp = exp_cmd("synthesize", "generate the tiny world and pack it as a local mirror", cmd_synthesize, results=False)
    sp.add_argument("--out", required=True, help="mirror folder")
    sp = exp_cmd("download", "fetch and verify the dataset's sources", cmd_download)
    sp.add_argument("--data-dir", required=True)
    sp.add_argument("--base-url", help="base URL for relative source URLs (default: data.base_url)")
    sp.add_argument("--mirror", help="a mirror laid out as <mirror>/<host>/<path> (default: data.mirror)")
    sp.add_argument("--workers", type=int, default=8, help="parallel downloads (and crawl threads)")
    sp.add_argument("--out", help="summary of what was verified (default: <data-dir>/download.json)")
    sp = exp_cmd("instruct", "regenerate LLaVA-Instruct with a teacher chat model (data.instruct)", cmd_instruct)
    sp.add_argument("--data-dir", required=True)
    sp.add_argument("--out", help="the records' folder (default: <data-dir>/instruct)")
    sp.add_argument("--base-url", help="base URL for relative source URLs (default: data.base_url)")
    sp.add_argument("--workers", type=int, default=4, help="parallel downloads of the teacher's sources")
    sp = exp_cmd("filter", "drop bad records and write the training sets and a manifest", cmd_filter)
    sp.add_argument("--data-dir", required=True)
    sp.add_argument("--out", help="the training sets' folder (default: <data-dir>/filtered)")
    sp.add_argument("--instruct", help="the regenerated LLaVA-Instruct's folder (default: <data-dir>/instruct)")
    sp.add_argument("--workers", type=int, help="processes checking images (default: data.filter.workers)")
    for stage, help_ in (("pretrain", "stage 1: train the projector"),
                         ("finetune", "stage 2: visual instruction tuning")):
        sp = exp_cmd(stage, help_, cmd_pretrain if stage == "pretrain" else cmd_finetune)
        sp.add_argument("--data-dir", required=True)
        sp.add_argument("--filtered", help="the filter's folder of training sets (default: <data-dir>/filtered)")
        sp.add_argument("--out", required=True)
        sp.add_argument("--no-launch", action="store_true",
                        help="run in this process even if the stage asks for several GPUs or nodes "
                             "(default: re-run under torchrun, via srun on multi-node SLURM jobs; exit 75 "
                             "means preempted: a checkpoint was saved, run again to resume)")
        if stage == "finetune":
            sp.add_argument("--init", required=True, help="stage-1 output folder (mm_projector.bin)")
    sp = exp_cmd("import", "fetch a released checkpoint (released:) and convert it for evaluation", cmd_import)
    sp.add_argument("--data-dir", required=True, help="the dataset's folder ({data} in released.folder/vision_tower)")
    sp.add_argument("--out", required=True, help="the stage folder: source/ (fetched files), model/ (converted)")
    sp.add_argument("--base-url", help="base URL for relative source URLs (default: data.base_url)")
    sp.add_argument("--workers", type=int, default=4, help="parallel downloads")
    sp = exp_cmd("evaluate", "answer and score one benchmark", cmd_evaluate)
    sp.add_argument("benchmark")
    sp.add_argument("--model", required=True, help="stage-2 model folder")
    sp.add_argument("--data-dir", required=True)
    sp.add_argument("--eval-root", help="eval kit folder (default: <data-dir>/<data.eval_root>)")
    sp.add_argument("--out", required=True)
    shard = sp.add_mutually_exclusive_group()
    shard.add_argument("--shard", metavar="K/N",
                       help="answer only the K-th (from 0) of N contiguous chunks into <out>/shards/K_of_N.jsonl")
    shard.add_argument("--merge-shards", type=int, metavar="N",
                       help="concatenate <out>/shards/*_of_N.jsonl in question order, then judge and score")
    sp = sub.add_parser("score", help="score an existing answers file (any LLaVA-compatible model)")
    sp.add_argument("benchmark")
    sp.add_argument("--eval-root", required=True)
    sp.add_argument("--answers", required=True)
    sp.add_argument("--reviews", nargs="*")
    sp.add_argument("--out", help="folder for upload files (default: beside the answers)")
    sp.set_defaults(fn=cmd_score)
    sp = exp_cmd("report", "tabulate the experiment's scores beside the paper's; draw its training curves "
                 "and summarise its data's filter manifest", cmd_report)
    sp.add_argument("--eval-dir", help="folder holding <benchmark>/scores.json (default: the variant's "
                    "evaluation folders under --results, from its job file or its plan)")
    sp.add_argument("--out", required=True)
    for name, help_, fn in (("runs", "list the variants, the stage folders each uses, their sizes and status",
                             cmd_runs),
                            ("gc", "list the stage and variant folders no listed variant uses; delete them with "
                             "--yes", cmd_gc)):
        sp = exp_cmd(name, help_, fn)
        sp.add_argument("--sweep", help="axes KEY=V1,V2 (space-separated), or a file under config/sweeps/")
        if name == "runs":
            sp.add_argument("--json", action="store_true", help="one JSON row per variant and stage")
        else:
            sp.add_argument("--keep", nargs="*", default=[], metavar="VARIANT",
                            help="variants (folder names under --results) whose stages to keep as well")
            sp.add_argument("--yes", action="store_true", help="delete what is listed")
            sp.add_argument("--workdir", default=".", help="the workflow's working folder, whose Snakemake "
                            "lock (.snakemake/locks) stops any deletion (default: .)")
    sp = sub.add_parser("mlflow-sync", help="send runs recorded while MLflow was unreachable")
    sp.add_argument("--results", default="results")
    sp.set_defaults(fn=cmd_mlflow_sync)
    sp = sub.add_parser("summary", help="one table across experiments")
    sp.add_argument("reports", nargs="+", help="report.csv files")
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_summary)
    sp = sub.add_parser("inspect", help="print each record's prompt, token ids, labels and supervised texts")
    sp.add_argument("--records", required=True, help="LLaVA-format JSON list of records")
    sp.add_argument("--template", required=True, help="conversation template, e.g. plain or vicuna_v1")
    sp.add_argument("--tokenizer", required=True, help="transformers tokenizer (or LLaVA checkpoint) folder")
    sp.add_argument("--max-length", type=int, default=2048)
    sp.add_argument("--truncation", choices=("text", "expanded"), default="text",
                    help="text: cut text tokens, the image counted once (the released checkpoints); "
                         "expanded: also cut after the image is expanded")
    sp.add_argument("--num-image-tokens", type=int,
                    help="image tokens per image (default: the folder's image_seq_length, else 576)")
    sp.set_defaults(fn=cmd_inspect)
    sp = exp_cmd("chat", "talk to a model in the terminal: the experiment's (or variant's) final model, or --model",
                 cmd_chat)
    _model_flags(sp)
    sp.add_argument("--image", help="the image of the first turn (or /image PATH in the chat)")
    sp.add_argument("--ask", action="append", metavar="QUESTION",
                    help="answer this and exit (repeatable: the turns of one conversation)")
    sp.add_argument("--save", metavar="FILE", help="write the conversation as a LLaVA record when it ends")
    sp = sub.add_parser("demo", help="a local web page: chat with one or two models side by side (Gradio)")
    sp.add_argument("--results", default="results", help="results folder: every variant with a final model")
    sp.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="another model (repeatable)")
    sp.add_argument("--template", help="template of the --model folders (default: chat if the tokenizer has a "
                    "chat template, else vicuna_v1)")
    sp.add_argument("--dtype", choices=("fp16", "bf16", "fp32", "auto"), help="default: auto (bf16 on a GPU)")
    quant = sp.add_mutually_exclusive_group()
    quant.add_argument("--load-8bit", action="store_true", help="LLM.int8() through bitsandbytes")
    quant.add_argument("--load-4bit", action="store_true", help="NF4 through bitsandbytes")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    sp.add_argument("--port", type=int, default=7860)
    sp.set_defaults(fn=cmd_demo)
    sp = sub.add_parser("import-checkpoint", help="convert an original or llava-hf LLaVA checkpoint to ours")
    sp.add_argument("src", help="checkpoint folder")
    sp.add_argument("--out", required=True)
    sp.add_argument("--layout", required=True, choices=("original", "llava-hf"))
    sp.add_argument("--vision-tower", help="CLIP folder or hub name (original layout; default: mm_vision_tower)")
    sp.set_defaults(fn=cmd_import_checkpoint)
    from llava_core.cluster.commands import add_cluster_parser  # argparse only: every job builds this parser

    add_cluster_parser(sub)
    return p


def _record_imports(command: str, benchmark: str | None) -> None:
    """With ``LLAVA_CORE_RECORD_IMPORTS=<file>``, append the ``llava_core`` modules this process
    imported: what a job really ran, to check against its plan's code digest (tests do)."""
    path = os.environ.get("LLAVA_CORE_RECORD_IMPORTS")
    if path:
        modules = sorted(m for m in sys.modules if m == "llava_core" or m.startswith("llava_core."))
        with open(path, "a", encoding="utf-8") as fh:  # one short line per process: an atomic append
            fh.write(json.dumps({"command": command, "benchmark": benchmark, "modules": modules}) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a launcher re-runs these under torchrun
    _setup_logging()
    if os.environ.get("LLAVA_CORE_RECORD_IMPORTS"):
        import atexit

        atexit.register(_record_imports, args.command, getattr(args, "benchmark", None))
    try:
        return args.fn(args)
    except (ConfigError, FormatError, ValueError, FileNotFoundError) as e:
        print(f"llava-core {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not getattr(e, "user_facing", False):  # a bug: keep the traceback
            raise
        print(f"llava-core {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
