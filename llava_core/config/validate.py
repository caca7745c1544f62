"""Checks the schema cannot express: allowed names and batch arithmetic."""

from __future__ import annotations

import json
from functools import lru_cache

from omegaconf import DictConfig

TEMPLATES = ("plain", "vicuna_v1", "llava_v0", "chat")  # chat: the tokenizer's own template
ASPECTS = ("square", "pad")
TUNES = ("projector", "full", "lora")
TOWERS = ("clip", "siglip")
TINY_FAMILIES = ("llama", "qwen2")
UNPACK = ("none", "zip", "tar")
EVAL_DTYPES = ("fp16", "bf16", "fp32")  # evaluation.dtype; fp16 is the official one
QUANTIZATION = ("none", "8bit", "4bit")  # evaluation.quantization: llava_core/model/quantize.py loads them
LOSS_WEIGHTINGS = ("rank_mean", "global_token")  # see StageConfig.loss_weighting
TRUNCATIONS = ("text", "expanded")  # llava_core.data.tokenize.TRUNCATION_MODES


def _check(value, allowed, key: str) -> None:
    if value not in allowed:
        from llava_core.config.compose import ConfigError

        raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the key and the allowed values for anything out of range."""
    from llava_core.config.compose import ConfigError
    from llava_core.config.schema import projector_layers
    from llava_core.evalkit import KITS as BENCHMARKS

    try:
        projector_layers(cfg.model.projector_type)
    except ValueError as e:
        raise ConfigError(f"model.projector_type: {e}") from None
    _check(cfg.model.tower, TOWERS, "model.tower")
    syn = cfg.data.get("synthetic")
    if syn is not None:
        _check(syn.llm.family, TINY_FAMILIES, "data.synthetic.llm.family")
        _check(syn.vision.tower, TOWERS, "data.synthetic.vision.tower")
    _check(cfg.model.conversation_template, TEMPLATES, "model.conversation_template")
    _check(cfg.model.vision_feature_select_strategy, ("default", "full"), "model.vision_feature_select_strategy")
    _check(cfg.evaluation.image_aspect_ratio, ASPECTS, "evaluation.image_aspect_ratio")
    _check(cfg.evaluation.dtype, EVAL_DTYPES, "evaluation.dtype")
    _check(cfg.evaluation.quantization, QUANTIZATION, "evaluation.quantization")
    if cfg.evaluation.batch_size < 1:
        raise ConfigError(f"evaluation.batch_size must be >= 1 (1 is the official setting), got "
                          f"{cfg.evaluation.batch_size}")
    for stage in ("pretrain", "finetune"):
        st = cfg[stage]
        _check(st.template, TEMPLATES, f"{stage}.template")
        _check(st.image_aspect_ratio, ASPECTS, f"{stage}.image_aspect_ratio")
        _check(st.tune, TUNES, f"{stage}.tune")
        _check(st.loss_weighting, LOSS_WEIGHTINGS, f"{stage}.loss_weighting")
        _check(st.truncation, TRUNCATIONS, f"{stage}.truncation")
        if st.tune == "lora" and (st.lora.r <= 0 or not st.lora.target_modules):
            raise ConfigError(f"{stage}.lora needs r > 0 and at least one target module")
        if st.global_batch_size <= 0 or st.per_device_train_batch_size <= 0:
            raise ConfigError(f"{stage}: batch sizes must be positive")
        per_step = st.per_device_train_batch_size * max(1, st.resources.gpus) * st.resources.nodes
        if st.global_batch_size % per_step:
            raise ConfigError(
                f"{stage}.global_batch_size={st.global_batch_size} is not a multiple of "
                f"per_device_train_batch_size x GPUs = {per_step}; change one so the global batch is kept")
        if st.deepspeed is not None:
            from llava_core.config.compose import config_dir

            if not (config_dir() / "deepspeed" / st.deepspeed).is_file():
                raise ConfigError(f"{stage}.deepspeed={st.deepspeed!r}: no such file in config/deepspeed/")
    if not cfg.evaluation.benchmarks:
        raise ConfigError("evaluation.benchmarks is empty; list at least one of: " + ", ".join(BENCHMARKS))
    for bench, settings in cfg.evaluation.benchmarks.items():
        _check(bench, tuple(BENCHMARKS), "evaluation.benchmarks key")
        if settings.num_shards < 1:
            raise ConfigError(f"evaluation.benchmarks.{bench}.num_shards must be >= 1")
    judge = cfg.evaluation.judge
    _check(judge.kind, ("openai", "local", "rule", "none"), "evaluation.judge.kind")
    if judge.kind in ("openai", "local") and not judge.model:
        raise ConfigError(f"evaluation.judge.kind={judge.kind} needs evaluation.judge.model (a model name or path)")
    if judge.passes < 1:
        raise ConfigError("evaluation.judge.passes must be >= 1")
    _check_sources(cfg.data.sources, "data")
    from llava_core.config.compose import to_dict
    from llava_core.prepare.sources import check_links

    try:
        check_links(to_dict(cfg.data.links))
    except ValueError as e:
        raise ConfigError(f"data: {e}") from None
    f = cfg.data.filter
    _check(f.eval_overlap, ("off", "report", "drop"), "data.filter.eval_overlap")
    if not 0 <= f.overlap_max_distance <= 16:
        raise ConfigError("data.filter.overlap_max_distance must be between 0 and 16 (bits of a 64-bit dHash)")
    if f.balance.min_count < 1 or f.balance.max_per_phrase < 1:
        raise ConfigError("data.filter.balance.min_count and max_per_phrase must be >= 1")
    _validate_instruct(cfg)
    _validate_released(cfg)


def _check_sources(sources, where: str) -> None:
    """A list of declared sources (data.sources, data.instruct.sources, released.sources): each
    unpack kind, then the downloader's own checks, before any job starts (once per list: the
    variants of a sweep share their sources)."""
    from llava_core.config.compose import ConfigError, to_dict

    for i, src in enumerate(sources):
        _check(src.unpack, UNPACK, f"{where}.sources[{i}].unpack")
    problem = _sources_problem(json.dumps(to_dict(sources), sort_keys=True))
    if problem:
        raise ConfigError(f"{where}: {problem}")


@lru_cache(maxsize=32)
def _sources_problem(sources_json: str) -> str | None:
    """What the downloader finds wrong with a list of sources (None: nothing)."""
    from llava_core.prepare.sources import sources_from_config

    try:
        sources_from_config(json.loads(sources_json))
    except ValueError as e:
        return str(e)
    return None


def _validate_instruct(cfg: DictConfig) -> None:
    """data.instruct: a switched-on generation needs its sources, a teacher and valid kinds."""
    from llava_core.config.compose import ConfigError

    ins = cfg.data.get("instruct")
    if ins is None:
        return
    gen = ins.generate
    _check_sources(ins.sources, "data.instruct")
    if not gen.enabled:
        return
    from llava_core.prepare.instruct.prompts import KINDS

    for kind in gen.kinds:
        _check(kind, KINDS, "data.instruct.generate.kinds entry")
    if not gen.kinds:
        raise ConfigError("data.instruct.generate.kinds is empty; list some of: " + ", ".join(KINDS))
    _check(gen.mix, ("extend", "replace"), "data.instruct.generate.mix")
    t = gen.teacher
    _check(t.kind, ("openai", "local", "rule"), "data.instruct.generate.teacher.kind")
    if t.kind in ("openai", "local") and not t.model:
        raise ConfigError(f"data.instruct.generate.teacher.kind={t.kind} needs data.instruct.generate.teacher.model "
                          "(a model name or path)")
    if t.concurrency < 1:
        raise ConfigError("data.instruct.generate.teacher.concurrency must be >= 1")
    if gen.num_images is not None and gen.num_images < 1:
        raise ConfigError("data.instruct.generate.num_images must be >= 1, or null for every captioned image")
    if "detail_description" in gen.kinds and not gen.detail_instructions:
        raise ConfigError("data.instruct.generate.detail_instructions is empty, but detail_description is among the "
                          "kinds: list the instructions a detailed description answers")


def _validate_released(cfg: DictConfig) -> None:
    """released: a layout we import, and exactly one place the weights come from."""
    from llava_core.config.compose import ConfigError

    rel = cfg.get("released")
    if rel is None:
        return
    _check(rel.layout, ("original", "llava-hf"), "released.layout")
    if bool(rel.sources) == bool(rel.folder):
        raise ConfigError("released: give either released.sources (files to fetch) or released.folder "
                          "(a checkpoint folder on disk), not both or neither")
    _check_sources(rel.sources, "released")
    if rel.lora_base and rel.layout != "original":
        raise ConfigError("released.lora_base (a LoRA release merged onto its base) needs released.layout=original")
