"""Variants and sweeps: grid and zip axes, stable names, seed groups, stage identity and sharing,
the fast composition path against Hydra's own, and planning every variant in one process."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from llava_core.config.compose import (
    ConfigError,
    _compose,
    _hydra_compose,
    load_experiment,
    stage_config,
    to_dict,
)
from llava_core.plan.build import identities, plan, plan_all
from llava_core.plan.variants import expand, split_axis_values, sweep_points, variant_name

SWEEPS = Path(__file__).resolve().parents[1] / "config" / "sweeps"


def kinds(p: dict) -> Counter:
    return Counter(e["kind"] for e in p["stages"].values())


# ----------------------------------------------------------------------------- sweeps
def test_axis_values_split_on_top_level_commas_only():
    assert split_axis_values("1e-3,2e-3") == ["1e-3", "2e-3"]
    assert split_axis_values("[1,2],[3,4]") == ["[1,2]", "[3,4]"]
    assert split_axis_values("'a,b',c") == ["'a,b'", "c"]


def test_a_sweep_string_is_a_grid_with_the_last_axis_fastest(tmp_path):
    name, points = sweep_points("finetune.learning_rate=1e-3,2e-3 finetune.seed=1,2,3", tmp_path)
    assert name == "finetune.learning_rate=1e-3,2e-3 finetune.seed=1,2,3"
    assert points == [(("finetune.learning_rate", lr), ("finetune.seed", s)) for lr in ("1e-3", "2e-3")
                      for s in ("1", "2", "3")]
    assert sweep_points("", tmp_path) == ("", [()])


def test_a_sweep_file_has_grid_and_zip_axes(tmp_path):
    (tmp_path / "s.yaml").write_text("grid:\n  finetune.seed: [1, 2]\nzip:\n  finetune.warmup_ratio: [0.03, 0.1]\n"
                                     "  finetune.num_train_epochs: [1, 2]\n")
    name, points = sweep_points("s", tmp_path)
    assert name == "s" and len(points) == 4
    assert points[1] == (("finetune.seed", "1"), ("finetune.warmup_ratio", "0.1"), ("finetune.num_train_epochs", "2"))


@pytest.mark.parametrize("spec, message", [
    ("finetune.learning_rate", "no sweep file"),
    ("finetune.learning_rate=", "is not an axis"),
    ("seed=1,1", "repeats a value"),
    ("seed=1 seed=2", "an axis is given twice"),
])
def test_bad_sweeps_say_what_is_wrong(tmp_path, spec, message):
    with pytest.raises(ValueError, match=message):
        sweep_points(spec, tmp_path)


def test_zip_axes_of_unequal_length_are_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text("zip:\n  a: [1, 2]\n  b: [1]\n")
    with pytest.raises(ValueError, match="same number of values"):
        sweep_points("bad", tmp_path)


def test_every_preset_gets_the_whole_grid_after_the_global_overrides(tmp_path):
    variants = expand(["tiny", "tiny-released"], ["data.synthetic.n_eval=20"], "seed=1,2", tmp_path)
    assert [(v.preset, v.overrides) for v in variants] == [
        (p, ("data.synthetic.n_eval=20", f"seed={s}")) for p in ("tiny", "tiny-released") for s in (1, 2)]


# ----------------------------------------------------------------------------- names and groups
def test_names_leave_out_no_op_and_transport_overrides_and_sort_by_key():
    p = plan_all(["tiny"], ["seed=42", "tracking.tracking_uri=http://x", "data.mirror=http://m",
                            "finetune.seed=3", "finetune.learning_rate=1e-3"], results="R")
    (name,) = p["variants"]
    # seed=42 is the preset's own seed; the URI and the mirror say how jobs run, not what they compute
    assert name == "tiny+finetune.learning_rate=1e-3+finetune.seed=3"
    assert p["variants"][name]["group"] == "tiny+finetune.learning_rate=1e-3"
    assert list(plan_all(["tiny"], ["finetune.seed=3", "finetune.learning_rate=1e-3"], results="R")["variants"]) \
        == [name]  # the same settings in another order: the same name


def test_a_preset_without_overrides_keeps_its_name_and_folder():
    p = plan("tiny", results="R")
    assert p["name"] == "tiny" and p["dir"] == "R/tiny" and p["stages"]["report"]["outputs"]["md"] == "R/tiny/report.md"
    assert p["dataset"] == "tiny" and p["stages"]["download"]["dir"] == "R/data/tiny"


def test_long_or_unsafe_names_end_in_a_digest():
    long = tuple(f"data.synthetic.n_{k}={10 ** 6}" for k in ("pretrain", "finetune", "eval", "pretrain_x",
                                                            "finetune_x", "eval_x"))
    name = variant_name("tiny", long)
    assert len(name) <= 160 and name.startswith("tiny+data.synthetic.n_pretrain=1000000+")
    assert name != variant_name("tiny", long[:-1] + ("data.synthetic.n_eval_x=7",))  # the digest tells them apart
    unsafe = variant_name("tiny", ("evaluation.judge.base_url=http://h:1/v1",))
    assert "/" not in unsafe and ":" not in unsafe and unsafe.startswith("tiny+1-")
    # A deletion is left out of the readable part, not everything after it.
    dropped = variant_name("tiny", ("data.synthetic.n_eval=20", "~evaluation.benchmarks.vqav2", "finetune.seed=2"))
    assert re.fullmatch(r"tiny\+data\.synthetic\.n_eval=20\+finetune\.seed=2\+1-[0-9a-f]{8}", dropped), dropped
    assert dropped != variant_name("tiny", ("data.synthetic.n_eval=20", "~evaluation.benchmarks.gqa", "finetune.seed=2"))


def test_every_wildcard_value_survives_the_way_snakemake_hands_it_to_a_cluster_job():
    """A SLURM job gets its wildcards as ``--target-jobs rule:name=value,...``: Snakemake's own encoder
    and parser must give back each variant name and dataset folder a sweep with a changed download,
    a deletion and a long name produces (a comma in one broke every report job on SLURM)."""
    from snakemake.target_jobs import parse_target_jobs_cli_args
    from snakemake_interface_executor_plugins.utils import TargetSpec, encode_target_jobs_cli_args

    long = [f"data.synthetic.n_{k}={10 ** 6}" for k in ("pretrain", "finetune")]
    p = plan_all(["tiny"], [*long, "data.synthetic.n_eval=20", "~evaluation.benchmarks.vqav2"],
                 "finetune.learning_rate=1e-3,2e-3 seed=1,2", results="R")
    names = set(p["variants"])
    datasets = {e["dataset"] for e in p["stages"].values() if e["dataset"]}
    assert len(names) == 4 and len(datasets) == 1 and "tiny" not in datasets
    for rule, values in (("report", names), ("filter", datasets)):
        for value in values:
            wildcards = {"variant" if rule == "report" else "dataset": value, "sid": "0123456789ab"}
            (encoded,) = encode_target_jobs_cli_args([TargetSpec(rule, wildcards)])
            (parsed,) = parse_target_jobs_cli_args([encoded])
            assert (parsed.rulename, dict(parsed.wildcards_dict)) == (rule, wildcards), encoded


def test_seed_variants_form_one_group_and_duplicates_collapse():
    p = plan_all(["tiny"], [], "finetune.learning_rate=1e-3,2e-3 seed=42,7", results="R")
    groups = Counter(v["group"] for v in p["variants"].values())
    assert groups == {"tiny+finetune.learning_rate=1e-3": 2, "tiny+finetune.learning_rate=2e-3": 2}
    assert "tiny+finetune.learning_rate=1e-3" in p["variants"]  # seed=42 is the preset's: no seed in the name
    again = plan_all(["tiny"], ["seed=42"], "seed=42,7", results="R")  # two ways to the preset's seed
    assert list(again["variants"]) == ["tiny", "tiny+seed=7"]


# ----------------------------------------------------------------------------- identity and sharing
def test_two_presets_share_stage_1_and_a_learning_rate_sweep_shares_it_too():
    p = plan_all(["llava-v1.5-7b", "llava-v1.5-7b-lora"], results="R")
    assert kinds(p) == Counter({"download": 1, "filter": 1, "pretrain": 1, "finetune": 2, "evaluate": 24, "report": 2})
    (pretrain,) = [e for e in p["stages"].values() if e["kind"] == "pretrain"]
    assert pretrain["users"] == ["llava-v1.5-7b", "llava-v1.5-7b-lora"] and pretrain["owner"] == "llava-v1.5-7b"
    sweep = plan_all(["llava-v1.5-7b"], [], "finetune.learning_rate=1e-5,2e-5,3e-5", results="R")
    assert kinds(sweep) == Counter({"download": 1, "filter": 1, "pretrain": 1, "finetune": 3, "evaluate": 36,
                                    "report": 3})


def test_a_stage_2_seed_sweep_shares_stage_1_and_seed_sets_both():
    assert kinds(plan_all(["tiny"], [], "finetune.seed=1,2,3", results="R"))["pretrain"] == 1
    assert kinds(plan_all(["tiny"], [], "seed=1,2,3", results="R"))["pretrain"] == 3
    cfg = load_experiment("tiny", ["seed=5", "finetune.seed=9"])
    assert stage_config(cfg, "pretrain")["seed"] == 5 and stage_config(cfg, "finetune")["seed"] == 9


def test_identity_follows_the_config_slice_and_the_upstream_identities():
    base = identities(load_experiment("tiny"))
    lr = identities(load_experiment("tiny", ["finetune.learning_rate=1e-3"]))
    assert {k for k in base if base[k] != lr[k]} == {"finetune", "report", *(k for k in base if k.startswith("eval/"))}
    pope = identities(load_experiment("tiny", ["evaluation.benchmarks.pope.max_new_tokens=8"]))
    assert {k for k in base if base[k] != pope[k]} == {"eval/pope", "report"}
    data = identities(load_experiment("tiny", ["data.synthetic.n_eval=20"]))
    assert all(base[k] != data[k] for k in base)  # everything reads the data


def test_a_changed_download_gets_its_own_dataset_folder():
    p = plan("tiny", ["data.synthetic.n_eval=20"], results="R")
    assert p["dataset"].startswith("tiny+") and p["stages"]["download"]["dir"] == f"R/data/{p['dataset']}"
    filtered = plan("tiny", ["data.filter.dedupe=false"], results="R")
    assert filtered["dataset"] == "tiny"  # the same download: the same folder, another filtered set
    assert filtered["stages"]["filter"]["dir"] != plan("tiny", results="R")["stages"]["filter"]["dir"]


def test_a_renamed_dataset_never_lands_in_another_ones_folder():
    """tiny's world renamed llava-v1.5 differs from what llava-v1.5-7b downloads: its own folder."""
    p = plan_all(["llava-v1.5-7b", "tiny"], ["data.name=llava-v1.5"], results="R")
    folders = sorted({e["dir"] for e in p["stages"].values() if e["kind"] == "download"})
    assert folders[0] == "R/data/llava-v1.5" and folders[1].startswith("R/data/llava-v1.5+")


def test_presets_that_define_one_dataset_name_differently_are_refused(tmp_path, monkeypatch):
    """Two presets whose own configs give one dataset name two contents: refused, not mixed."""
    import shutil

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config", config)
    tiny = (config / "experiment" / "tiny.yaml").read_text().replace("name: tiny\n", "name: tiny2\n")
    (config / "experiment" / "tiny2.yaml").write_text(tiny + "data:\n  name: llava-v1.5\n")
    monkeypatch.setenv("LLAVA_CORE_CONFIG_DIR", str(config))
    with pytest.raises(ValueError, match="would write different download stages into R/data/llava-v1.5"):
        plan_all(["llava-v1.5-7b", "tiny2"], results="R")


# ----------------------------------------------------------------------------- composition
@pytest.mark.parametrize("overrides", [
    ["finetune.learning_rate=1e-3", "seed=7"],
    ["finetune.lora.target_modules=[q_proj,k_proj]", "evaluation.judge.model=null"],
    ["finetune.deepspeed=zero2.json", "finetune.tune=lora", "finetune.lora.r=8"],
    ["evaluation.benchmarks.pope.max_new_tokens=8", "data.synthetic.n_eval=20", "finetune.bf16=false"],
    ["tracking.experiment_name='a b'", "finetune.optim=sgd", "+finetune.extra_key=1"],
])
def test_value_overrides_on_the_composed_preset_equal_hydras_composition(overrides):
    """The fast path (the preset composed once, the overrides applied by Hydra's own code) gives
    exactly Hydra's full composition of the preset with the overrides."""
    fast = _compose("tiny", overrides)
    full = _hydra_compose("tiny", tuple(overrides))
    OmegaConf.resolve(full)
    assert to_dict(fast) == to_dict(full)
    assert to_dict(fast) != to_dict(_compose("tiny", []))


def test_group_overrides_compose_with_hydra():
    """``model=...`` picks another config group: composed by Hydra, not applied as a value."""
    cfg = _compose("tiny", ["model=vicuna-7b-clip336"])
    assert to_dict(cfg)["model"] == to_dict(_hydra_compose("tiny", ("model=vicuna-7b-clip336",)))["model"]
    assert "vicuna" in str(cfg.model.llm)


def test_bad_overrides_still_name_the_key():
    with pytest.raises(ConfigError, match="unknown key 'finetune.warmup'.*did you mean 'finetune.warmup_ratio'"):
        load_experiment("tiny", ["finetune.warmup=0.1"])
    with pytest.raises(ConfigError, match="override 'finetune.learning_rate=fast'"):
        load_experiment("tiny", ["finetune.learning_rate=fast"])
