"""Compose an experiment's config from the Hydra presets, validate it and cut it into stages.

The presets live in the repository's ``config/`` folder (``experiment/``, ``model/``, ``data/``,
``stage/``, ``evaluation/``, ``deepspeed/``). ``LLAVA_CORE_CONFIG_DIR`` points elsewhere.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from llava_core.config.schema import ExperimentConfig
from llava_core.plan.stage import Stage, experiment_stages

#: A job that only runs Python on files (the tiny world's generator, a report, the summary).
SMALL_JOB = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 2000, "runtime": 10}


class ConfigError(ValueError):
    """A bad experiment name, key or value; the message says what is allowed."""


def config_dir() -> Path:
    """The folder holding the Hydra presets."""
    env = os.environ.get("LLAVA_CORE_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "config", Path.cwd() / "config"]
    for cand in candidates:
        if (cand / "experiment").is_dir():
            return cand.resolve()
    raise ConfigError(f"no preset folder found (looked in {[str(c) for c in candidates]}); "
                      "set LLAVA_CORE_CONFIG_DIR to the repository's config/ folder")


def available_experiments() -> list[str]:
    """Names of the shipped experiment presets."""
    return sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


@lru_cache(maxsize=1)
def _register_schema() -> None:
    ConfigStore.instance().store(name="llava_schema", node=ExperimentConfig)


def load_experiment(name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose preset ``name`` with Hydra ``overrides``, check it and return it resolved."""
    known = available_experiments()
    if name not in known:
        raise ConfigError(f"unknown experiment {name!r}{_did_you_mean(name, known)}; "
                          f"available presets: {', '.join(known)}")
    try:
        cfg = _compose(name, overrides)
        missing = _missing_keys(name, overrides, cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_explain(name, list(overrides), e)) from None
    except AssertionError as e:  # OmegaConf asserts when an override reaches under a null node
        raise ConfigError(_null_parent(name, list(overrides)) or _one_line(e)) from None
    _type_benchmarks(cfg)
    if missing:
        raise ConfigError(f"experiment {name!r}: required keys have no value: {', '.join(missing)}")
    from llava_core.config.validate import validate

    validate(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _missing_keys(name: str, overrides: list[str] | tuple[str, ...], cfg: DictConfig) -> list[str]:
    """The keys of ``cfg`` left ``???``. Walking a whole config costs ~50 ms, so for value overrides
    (which can fill a missing key but not add one, unless they hold ``???``) only the preset's own
    missing keys are looked at."""
    if overrides and all("???" not in o for o in overrides):
        parsed = _parse_overrides(tuple(overrides))
        if parsed is not None and not any(_is_group_override(o) for o in parsed):
            return [k for k in _preset_missing_keys(name, str(config_dir())) if _still_missing(cfg, k)]
    return sorted(OmegaConf.missing_keys(cfg))


def _still_missing(cfg: DictConfig, dotted: str) -> bool:
    parent, _, key = dotted.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is not None and OmegaConf.is_missing(node, key)


@lru_cache(maxsize=64)
def _preset_missing_keys(name: str, where: str) -> tuple[str, ...]:
    return tuple(sorted(OmegaConf.missing_keys(_compose(name, ()))))


def _compose(name: str, overrides: list[str] | tuple[str, ...]) -> DictConfig:
    """The preset with ``overrides``, resolved. Overrides of values (not of config groups) are applied
    to the preset composed once per process, by Hydra's own parser and override code, as Hydra's
    ``compose`` applies them after building the defaults list: a sweep of many variants of one preset
    costs one composition, not one each (``tests/test_config.py`` checks both ways agree)."""
    overrides = list(overrides)
    parsed = _parse_overrides(tuple(overrides)) if overrides else []
    if parsed is None or any(_is_group_override(o) for o in parsed):
        cfg = _hydra_compose(name, tuple(overrides))
    else:

        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        cfg = _hydra_compose(name, ())
        ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
    OmegaConf.resolve(cfg)
    return cfg


@lru_cache(maxsize=64)
def _hydra_compose_cached(name: str, overrides: tuple[str, ...], where: str) -> bytes:
    """Hydra's composition, pickled: every caller gets its own copy (unpickling is several times
    faster than a deep copy of a DictConfig)."""
    import pickle

    _register_schema()
    with initialize_config_dir(config_dir=where, version_base="1.3"):
        cfg = compose(config_name="llava", overrides=[f"+experiment={name}", *overrides])
    return pickle.dumps(cfg)


def _hydra_compose(name: str, overrides: tuple[str, ...]) -> DictConfig:
    """Hydra's composition of the preset with ``overrides``, unresolved (a fresh, writable copy)."""
    import pickle

    return pickle.loads(_hydra_compose_cached(name, overrides, str(config_dir())))


def _parse_overrides(overrides: tuple[str, ...]):
    """Hydra's parse of the override strings, or None if they do not parse (the full composition
    then reports it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return None


def _is_group_override(override) -> bool:
    """Whether an override picks a config group (``model=llava-v1.5-13b``), not a value."""
    if override.is_sweep_override() or override.is_hydra_override() or override.package is not None:
        return True
    return (config_dir() / override.key_or_group).is_dir()


def _did_you_mean(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config (mappings only: a list is one key)."""
    out = []
    for k, v in node.items():
        out.append(f"{prefix}{k}")
        if isinstance(v, dict):
            out += _keys(v, f"{prefix}{k}.")
    return out


def _explain(name: str, overrides: list[str], error: BaseException) -> str:
    """One message for a failed composition: the override at fault, what was wrong and, for an
    unknown key, the nearest valid one and the keys allowed beside it."""
    try:
        keys = _keys(OmegaConf.to_container(_compose(name, [])))
    except (HydraException, OmegaConfBaseException):  # the preset itself is broken: say what Hydra said
        return f"experiment {name!r}: {_one_line(error)}"
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if override.startswith(("+", "~")) or key in keys:
            continue
        parent, _, leaf = key.rpartition(".")
        siblings = sorted(k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent)
        allowed = f"; keys {'under ' + repr(parent) if parent else 'at the top level'}: {', '.join(siblings)}" \
            if siblings else ""
        return (f"override {override!r} of experiment {name!r}: unknown key {key!r}"
                f"{_did_you_mean(key, keys)}{allowed}")
    culprit = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") in _one_line(error)), None)
    where = f"override {culprit!r} of experiment {name!r}" if culprit else \
        f"experiment {name!r} with overrides {overrides}"
    return f"{where}: {_one_line(error)}"


def _null_parent(name: str, overrides: list[str]) -> str | None:
    """The message for an override of a key under a section the preset leaves null (``data.instruct``
    of a dataset that has none), or None if no override does that."""
    base = OmegaConf.to_container(_compose(name, []))
    for override in overrides:
        parts = override.split("=", 1)[0].lstrip("+~").split(".")
        node = base
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
            if node is None:
                section = ".".join(parts[: i + 1])
                return (f"override {override!r} of experiment {name!r}: {section} is null in this preset, so "
                        f"it has no {parts[-1]!r} to set; define {section} in the preset's config group first")
    return None


def _type_benchmarks(cfg: DictConfig) -> None:
    """Check each evaluation.benchmarks entry against BenchmarkSettings (keys and types)."""
    template = _benchmark_settings()
    for bench in list(cfg.evaluation.benchmarks):
        entry = cfg.evaluation.benchmarks[bench]
        try:
            typed = OmegaConf.merge(template, entry or {})
        except OmegaConfBaseException as e:
            raise ConfigError(f"evaluation.benchmarks.{bench}: {_one_line(e)}") from None
        cfg.evaluation.benchmarks[bench] = typed


@lru_cache(maxsize=1)
def _benchmark_settings() -> DictConfig:
    """The typed template of one benchmark's settings (made once; merging copies it)."""
    from llava_core.config.schema import BenchmarkSettings

    return OmegaConf.structured(BenchmarkSettings)


def _one_line(e: BaseException) -> str:
    """Hydra wraps the useful OmegaConf message in its cause; keep each level's first line."""
    parts = []
    while e is not None:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if first and first not in parts:
            parts.append(first)
        e = e.__cause__
    return ": ".join(parts)


_PLAIN: dict[int, tuple[DictConfig, dict]] = {}


def _plain(cfg: DictConfig) -> dict:
    """``to_dict(cfg)`` of a read-only (loaded) config, converted once: planning cuts many slices of
    each variant. Shared: :func:`stage_config` builds new containers where it changes anything, and
    its slices are read, never changed."""
    if not OmegaConf.is_readonly(cfg):
        return to_dict(cfg)
    hit = _PLAIN.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_PLAIN) > 256:
            _PLAIN.clear()
        hit = _PLAIN[id(cfg)] = (cfg, to_dict(cfg))
    return hit[1]


def to_dict(cfg: DictConfig | Any) -> Any:
    """A config node (mapping or list) as plain, resolved Python containers; anything else as is."""
    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg


def stages(cfg: DictConfig) -> list[Stage]:
    """Every stage of the DAG for this experiment, in order."""
    return experiment_stages(list(cfg.evaluation.benchmarks), cfg.data.synthetic is not None, instruct_enabled(cfg),
                             released=cfg.get("released") is not None)


def instruct_enabled(cfg: DictConfig) -> bool:
    """Whether the experiment regenerates LLaVA-Instruct (``data.instruct.generate.enabled``)."""
    ins = cfg.data.get("instruct")
    return ins is not None and bool(ins.generate.enabled)


def as_stage(stage: Stage | str) -> Stage:
    """A :class:`Stage`, given one or its key (``"eval/pope"``)."""
    return stage if isinstance(stage, Stage) else Stage.parse(stage)


# Data settings that say where from or how big, not what: in no stage's config slice.
DATA_KEYS_OUTSIDE_DIGESTS = ("base_url", "mirror", "disk_gb")
# How the teacher is reached, not what it writes: in no slice (a new key or more concurrency reruns nothing).
TEACHER_TRANSPORT = ("api_key_env", "concurrency", "timeout_s", "max_retries", "backoff_s",
                     "usd_per_mtok_prompt", "usd_per_mtok_completion")


def _instruct_slice(ins: dict | None) -> dict | None:
    """``data.instruct`` as the instruct job sees it: what is asked of which teacher, not how the
    teacher is reached nor how the filter mixes the records in (:func:`_instruct_mix`)."""
    if ins is None:
        return None
    gen = {k: v for k, v in ins["generate"].items() if k != "mix"}
    gen["teacher"] = {k: v for k, v in gen["teacher"].items() if k not in TEACHER_TRANSPORT}
    return {**{k: v for k, v in ins.items() if k not in ("image_folder", "format_prompts")}, "generate": gen}


def _instruct_mix(ins: dict | None) -> dict | None:
    """``data.instruct`` as the filter and training see it: whether and how the generated records
    are mixed in (what they hold reaches them through the instruct job's output file)."""
    if ins is None or not ins["generate"]["enabled"]:
        return None
    return {"mix": ins["generate"]["mix"], "image_folder": ins["image_folder"], "format_prompts": ins["format_prompts"]}


#: Keys added to the schema after results existed, with their defaults: left out of the slices while
#: they have them, so adding a setting does not rerun every stage computed before it existed.
NEW_KEY_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("model", "tower"): "clip",
    ("data", "synthetic", "llm", "family"): "llama",
    ("data", "synthetic", "llm", "tokenizer"): None,
    ("data", "synthetic", "vision", "tower"): "clip",
}


def _without_new_defaults(c: dict) -> dict:
    """``c`` (shared: never changed) with each key of :data:`NEW_KEY_DEFAULTS` left out where it has
    its default (copies along the changed paths only)."""
    out = dict(c)
    for path, default in NEW_KEY_DEFAULTS.items():
        node, parents = out, []
        for key in path[:-1]:
            child = node.get(key) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                break
            parents.append((node, key))
            node = child
        else:
            if path[-1] in node and node[path[-1]] == default:
                copy = {k: v for k, v in node.items() if k != path[-1]}
                for parent, key in reversed(parents):  # copy the parents too, from the leaf up
                    parent_copy = dict(parent) if parent is not out else parent
                    parent_copy[key] = copy
                    copy = parent_copy
    return out


def stage_seed(cfg: DictConfig, kind: str) -> int:
    """The seed a training stage runs with: its own (``pretrain.seed``, ``finetune.seed``) if set,
    else the experiment's ``seed``."""
    own = cfg[kind].get("seed")
    return int(cfg.seed if own is None else own)


def stage_config(cfg: DictConfig, stage: Stage | str) -> dict:
    """The part of the config that decides a stage's outputs (its rerun trigger and MLflow params).

    Upstream changes reach a stage through its input files, so each slice holds only what the
    stage itself reads: changing one benchmark's settings touches only that benchmark's slice.
    """
    stage = as_stage(stage)
    c = _without_new_defaults(_plain(cfg))
    data = {k: v for k, v in c["data"].items() if k != "resources"}
    if stage.kind == "instruct":
        return {"data": {"name": data["name"], "instruct": _instruct_slice(data.get("instruct"))}}
    data["instruct"] = _instruct_mix(data.get("instruct"))
    if stage.kind in ("synthesize", "download"):
        # What is fetched, not where from: switching mirrors reruns nothing (the lock checks bytes).
        return {"data": {k: data[k] for k in ("name", "synthetic", "sources", "links", "ocr_vqa")}}
    if stage.kind == "filter":
        # The filter also counts what each truncation rule would cut: the length, image tokens and
        # templates decide those counts. Not the LLM's name: experiments sharing a dataset share its
        # filter job (7B and 13B name different folders of the same Vicuna vocabulary), and the
        # counts use the tokenizer of the experiment whose config that job composes.
        lengths = {"model_max_length": c["model"]["model_max_length"],
                   "image_size": c["model"]["image_size"], "patch_size": c["model"]["patch_size"],
                   "vision_feature_select_strategy": c["model"]["vision_feature_select_strategy"],
                   "templates": {s: c[s]["template"] for s in ("pretrain", "finetune")}}
        if "chat" in lengths["templates"].values():  # the LLM's own template and vocabulary count
            lengths["llm"] = c["model"]["llm"]
        return {"data": {k: v for k, v in data.items() if k not in DATA_KEYS_OUTSIDE_DIGESTS}, "lengths": lengths}
    if stage.trains:
        st = dict(c[stage.kind])
        if st["tune"] != "lora":  # LoRA settings matter only to a LoRA stage
            st.pop("lora")
        st.pop("seed")  # the seed that applies, whichever key set it, is the slice's "seed"
        data = {k: v for k, v in data.items() if k not in DATA_KEYS_OUTSIDE_DIGESTS}
        return {"seed": stage_seed(cfg, stage.kind), "model": c["model"], "data": data, stage.kind: st}
    if stage.kind == "import":  # what is fetched and how it is converted
        return {"released": {k: v for k, v in c["released"].items() if k != "resources"}}
    if stage.kind == "evaluate":
        bench = stage.benchmark
        ev = c["evaluation"]
        if bench not in ev["benchmarks"]:
            raise ConfigError(f"benchmark {bench!r} is not listed in evaluation.benchmarks of {c['name']!r} "
                              f"({', '.join(ev['benchmarks'])})")
        out = {"model": c["model"], "benchmark": bench, "settings": ev["benchmarks"][bench],
               "batch_size": ev["batch_size"], "dtype": ev["dtype"], "image_aspect_ratio": ev["image_aspect_ratio"],
               "eval_root": data["eval_root"]}
        from llava_core.evalkit import kit

        if ev.get("quantization", "none") != "none":  # absent when off: unquantised digests stay as they were
            out["quantization"] = ev["quantization"]
        if kit(bench).judged:  # judged by an LLM: the judge's settings decide the score too
            out["judge"] = ev["judge"]
        return out
    return {"name": c["name"], "paper_row": c["paper_row"], "benchmarks": list(c["evaluation"]["benchmarks"]),
            "released": c.get("released") is not None}


def stage_resources(cfg: DictConfig, stage: Stage | str) -> dict:
    """Scheduler resources of one stage, from the experiment's config."""
    stage = as_stage(stage)
    if stage.kind in ("download", "filter"):
        res = cfg.data.resources
    elif stage.trains:
        res = cfg[stage.kind].resources
    elif stage.kind == "evaluate":
        res = cfg.evaluation.resources
    elif stage.kind == "import":
        res = cfg.released.resources
    else:
        return dict(SMALL_JOB)
    return dict(to_dict(res))


def config_hash(obj: Any) -> str:
    """A stable digest of a JSON-able object (the rerun trigger Snakemake compares)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
