"""`llava-core plan`, the only source of stage facts: the typed stage, the layout, resources of
every job, and code digests that follow the import graph (edit a module a stage imports and
its digest changes; edit any other and it does not)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llava_core.config.compose import ConfigError, load_experiment, stage_config, stages
from llava_core.evaluate.benchmarks import benchmark_module
from llava_core.plan import layout
from llava_core.plan.build import ENTRY, MERGE_JOB, plan, stage_code
from llava_core.plan.code_digest import CodeGraph
from llava_core.plan.stage import Stage

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the stage type
@pytest.mark.parametrize("key, kind, bench, slug", [
    ("finetune", "finetune", None, "finetune"), ("eval/pope", "evaluate", "pope", "eval_pope"),
    ("synthesize", "synthesize", None, "synthesize"), ("report", "report", None, "report"),
])
def test_stage_keys_round_trip(key, kind, bench, slug):
    st = Stage.parse(key)
    assert (st.kind, st.benchmark, st.key, st.slug, str(st)) == (kind, bench, key, slug, key)


@pytest.mark.parametrize("key", ["train", "evaluate", "eval/", "pretrain/x"])
def test_bad_stage_names_are_refused(key):
    with pytest.raises(ValueError):
        Stage.parse(key)


def test_stage_config_refuses_an_unlisted_benchmark():
    drop = [f"~evaluation.benchmarks.{b}" for b in load_experiment("tiny").evaluation.benchmarks if b != "pope"]
    cfg = load_experiment("tiny", drop)
    with pytest.raises(ConfigError, match="not listed in evaluation.benchmarks"):
        stage_config(cfg, Stage.evaluate("gqa"))
    assert [s.key for s in stages(cfg)] == ["synthesize", "download", "filter", "pretrain", "finetune", "eval/pope",
                                             "report"]


# ----------------------------------------------------------------------------- layout and jobs
def test_plan_paths_are_the_layout_and_the_patterns_match_them(tmp_path):
    p = plan("tiny", results=str(tmp_path))
    st = p["stages"]
    assert st["finetune"]["outputs"]["model"] == f"{tmp_path}/stages/finetune/{st['finetune']['id']}/model"
    assert p["layout"]["finetune"]["folders"] == ["model"]
    assert st["eval/pope"]["outputs"]["scores"] == f"{tmp_path}/stages/eval/pope/{st['eval/pope']['id']}/scores.json"
    assert st["filter"]["outputs"]["manifest"] == f"{tmp_path}/data/tiny/filtered/{st['filter']['id']}/manifest.json"
    assert st["report"]["outputs"]["md"] == f"{tmp_path}/tiny/report.md"
    # Every concrete path is its job's pattern with the wildcards filled in.
    for entry in st.values():
        names = {"variant": "tiny", "dataset": "tiny", "benchmark": entry["benchmark"] or "", "sid": entry["id"]}
        patterns = p["layout"][entry["kind"]]
        assert {k: v.format(**names) for k, v in patterns["outputs"].items()} == entry["outputs"]
        assert patterns["dir"].format(**names) == entry["dir"]
        assert patterns["log"].format(**names) == entry["log"]


def test_sharded_benchmark_has_shard_outputs_and_a_small_merge_job(tmp_path):
    p = plan("llava-v1.5-7b", ["evaluation.benchmarks.vqav2.num_shards=4"], results="R")
    vqa = p["stages"]["eval/vqav2"]
    assert vqa["shard_outputs"] == [f"R/stages/eval/vqav2/{vqa['id']}/shards/{k}_of_4.jsonl" for k in range(4)]
    assert vqa["jobs"]["evaluate_shard"]["gpu"] == 1
    assert vqa["jobs"]["evaluate"]["gpu"] == 0 and vqa["jobs"]["evaluate"]["mem_mb"] == MERGE_JOB["mem_mb"]
    assert p["stages"]["eval/gqa"]["shard_outputs"] == [] and set(p["stages"]["eval/gqa"]["jobs"]) == {"evaluate"}
    # The shard answers' path is the one the generation job writes.
    from llava_core.evaluate.generate import shard_file

    assert str(shard_file(Path(vqa["dir"]), 3, 4)) == vqa["shard_outputs"][3]


def test_multi_node_stage_asks_for_gres_per_node():
    ft = plan("llava-v1.5-13b")["stages"]["finetune"]["jobs"]["finetune"]
    assert ft["nodes"] == 2 and ft["gres"] == "gpu:8" and ft["gpu"] == 0


# ----------------------------------------------------------------------------- code digests
@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("pkg") / "llava_core"
    shutil.copytree(ROOT / "llava_core", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _all_stage_digests(cfg, graph: CodeGraph) -> dict[str, object]:
    return {st.key: stage_code(cfg, st, graph) for st in stages(cfg)}


def test_a_stage_digest_changes_exactly_with_the_modules_it_imports(package_copy):
    """For every stage of the tiny and the LoRA presets and every module of the package: append a
    line to the module; the stage's digest changes if and only if the module is in its closure."""
    cfgs = [load_experiment("tiny"), load_experiment("llava-v1.5-7b-lora")]  # LoRA: another stage 2
    base_graph = CodeGraph(package_copy)
    base = {cfg.name: _all_stage_digests(cfg, base_graph) for cfg in cfgs}
    modules = sorted(package_copy.rglob("*.py"))
    assert len(modules) > 40
    for path in modules:
        original = path.read_bytes()
        rel = path.relative_to(package_copy.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        try:
            path.write_bytes(original + b"\nEDITED_BY_TEST = 1\n")
            graph = base_graph.edited(path)
            for cfg in cfgs:
                for key, new in _all_stage_digests(cfg, graph).items():
                    old = base[cfg.name][key]
                    assert (new.digest != old.digest) == (module in old.modules), (cfg.name, key, module)
        finally:
            path.write_bytes(original)
    # An evaluation covers its own benchmark's code and no other benchmark's; no evaluation covers
    # plumbing; the data stages cover the kits and no benchmark code.
    tiny = base["tiny"]
    codes = {f"llava_core.evaluate.benchmarks.{m}" for m in ("vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope",
                                                             "mme", "mmbench", "seed_bench", "llava_bench", "mm_vet")}
    for key, code in tiny.items():
        own = {benchmark_module(key.split("/")[1])} if key.startswith("eval/") else set()
        assert codes & set(code.modules) == own, key
        assert not {"llava_core.tracking", "llava_core.io", "llava_core.plan.layout"} & set(code.modules), key
    kits = {f"llava_core.evalkit.{m}" for m in ("vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme",
                                                "mmbench", "seed_bench", "llava_bench", "mm_vet")}
    assert kits <= set(tiny["synthesize"].modules) and kits <= set(tiny["filter"].modules)
    assert "llava_core.model.checkpoints" not in tiny["pretrain"].modules
    assert "llava_core.model.checkpoints" in tiny["finetune"].modules and "llava_core.evaluate.run" not in \
        tiny["finetune"].modules


def _module_file(package_copy: Path, module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    return package_copy / rel / "__init__.py" if (package_copy / rel).is_dir() else (package_copy / rel).with_suffix(".py")


def _changed_by_appending(package_copy: Path, module: str, cfgs) -> dict[str, list[str]]:
    """Per preset, the stages whose code digest changes when ``module`` gets one more line."""
    graph = CodeGraph(package_copy)
    base = {cfg.name: _all_stage_digests(cfg, graph) for cfg in cfgs}
    path = _module_file(package_copy, module)
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\nEDITED_BY_TEST = 1\n")
        edited = graph.edited(path)
        return {cfg.name: sorted(k for k, new in _all_stage_digests(cfg, edited).items()
                                 if new.digest != base[cfg.name][k].digest) for cfg in cfgs}
    finally:
        path.write_bytes(original)


@pytest.fixture(scope="module")
def tiny_and_7b():
    return [load_experiment("tiny"), load_experiment("llava-v1.5-7b")]


@pytest.mark.parametrize("module", ["pope", "mme", "gqa", "mmbench", "scienceqa", "llava_bench", "mm_vet", "vqav2",
                                    "vizwiz", "textvqa", "seed_bench"])
def test_a_benchmark_code_edit_changes_only_that_benchmarks_evaluation(package_copy, tiny_and_7b, module):
    """A scorer or loader fix reruns that benchmark's evaluation (and the report, through its new
    scores), never the filter or training: the data stages read the benchmark's kit, not its code."""
    benchmarks = {"mmbench": ["mmbench", "mmbench_cn"]}.get(module, [module])  # one module, two benchmarks
    changed = _changed_by_appending(package_copy, f"llava_core.evaluate.benchmarks.{module}", tiny_and_7b)
    assert changed == {cfg.name: [f"eval/{b}" for b in benchmarks] for cfg in tiny_and_7b}


@pytest.mark.parametrize("module", ["llava_core.tracking", "llava_core.io", "llava_core.config.validate",
                                    "llava_core.plan.layout", "llava_core.chat_client", "llava_core.exit_codes"])
def test_a_plumbing_edit_changes_no_stage(package_copy, tiny_and_7b, module):
    """Renaming an MLflow metric or rewording an error message reruns nothing."""
    assert _changed_by_appending(package_copy, module, tiny_and_7b) == {cfg.name: [] for cfg in tiny_and_7b}


def test_a_kit_edit_reruns_what_reads_it(package_copy, tiny_and_7b):
    """POPE's declarations feed the tiny world, the filter's eval-overlap index and POPE's evaluation."""
    changed = _changed_by_appending(package_copy, "llava_core.evalkit.pope", tiny_and_7b)
    assert changed == {"tiny": ["eval/pope", "filter", "synthesize"], "llava-v1.5-7b": ["eval/pope", "filter"]}


def test_a_judge_edit_reruns_the_judged_evaluations_only(package_copy, tiny_and_7b):
    changed = _changed_by_appending(package_copy, "llava_core.evaluate.judge", tiny_and_7b)
    assert changed == {cfg.name: ["eval/llava_bench", "eval/mm_vet"] for cfg in tiny_and_7b}


def test_a_cli_plumbing_function_edit_changes_no_stage(package_copy):
    """``_run`` (the MLflow runs of every stage) is CLI plumbing: editing it reruns nothing."""
    cfg = load_experiment("tiny")
    base = _all_stage_digests(cfg, CodeGraph(package_copy))
    cli = package_copy / "cli.py"
    original = cli.read_text()
    start = original.index("\ndef _run(")
    body = original.index("):\n", start) + 3  # the first line of its body
    try:
        cli.write_text(original[:body] + "    args.edited = True\n" + original[body:])
        edited = _all_stage_digests(cfg, CodeGraph(package_copy))
        assert {k: v.digest for k, v in edited.items()} == {k: v.digest for k, v in base.items()}
    finally:
        cli.write_text(original)


def test_the_entry_module_counts_only_what_the_entry_reaches(package_copy):
    """cli.py holds every stage's entry: editing one command reruns that stage, not the others."""
    cfg = load_experiment("tiny")
    base = _all_stage_digests(cfg, CodeGraph(package_copy))
    cli = package_copy / "cli.py"
    original = cli.read_text()
    try:
        cli.write_text(original + "\n# a comment at the end of the file\n")
        same = _all_stage_digests(cfg, CodeGraph(package_copy))
        assert {k: v.digest for k, v in same.items()} == {k: v.digest for k, v in base.items()}
        assert "def cmd_finetune(args) -> int:\n" in original
        cli.write_text(original.replace("def cmd_finetune(args) -> int:\n",
                                        "def cmd_finetune(args) -> int:\n    args.edited = True\n"))
        edited = _all_stage_digests(cfg, CodeGraph(package_copy))
        changed = sorted(k for k in base if edited[k].digest != base[k].digest)
        assert changed == ["finetune"]
    finally:
        cli.write_text(original)


def test_a_deepspeed_config_file_is_part_of_the_training_digest(tmp_path, monkeypatch):
    src = ROOT / "config"
    shutil.copytree(src, tmp_path / "config")
    monkeypatch.setenv("LLAVA_CORE_CONFIG_DIR", str(tmp_path / "config"))
    cfg = load_experiment("llava-v1.5-7b")
    before = {k: stage_code(cfg, Stage.parse(k)).digest for k in ("pretrain", "finetune")}
    ds = tmp_path / "config" / "deepspeed" / cfg.finetune.deepspeed
    ds.write_text(ds.read_text().replace("{", '{"wall_clock_breakdown": false,', 1))
    after = {k: stage_code(cfg, Stage.parse(k)).digest for k in ("pretrain", "finetune")}
    changed = {k for k in before if before[k] != after[k]}
    assert "finetune" in changed
    assert ("pretrain" in changed) == (cfg.pretrain.deepspeed == cfg.finetune.deepspeed)


def test_every_kind_has_an_entry_in_the_cli():
    import llava_core.cli as cli

    for kind, entry in ENTRY.items():
        module, _, func = entry.partition(":")
        assert module == "llava_core.cli" and callable(getattr(cli, func)), kind
    assert layout.OUTPUTS.keys() >= set(ENTRY) - {"summary"} | {"summary"}


# ----------------------------------------------------------------------------- the instruct branch
ON = "data.instruct.generate.enabled=true"


def _digests(*overrides: str) -> dict[str, str]:
    return {k: st["config_digest"] for k, st in plan("tiny", list(overrides))["stages"].items()}


def test_instruct_stage_is_planned_only_when_switched_on_and_reruns_what_it_should():
    assert "instruct" not in _digests()
    on = plan("tiny", [ON])
    assert [k for k in on["stages"]][:4] == ["synthesize", "download", "instruct", "filter"]
    sid = on["stages"]["instruct"]["id"]
    assert on["stages"]["instruct"]["outputs"] == {"records": f"results/data/tiny/instruct/{sid}/llava_instruct.json",
                                                   "manifest": f"results/data/tiny/instruct/{sid}/manifest.json"}
    base = _digests(ON)
    # Switching it on changes what stage 2 trains on: filter and training rerun, download does not.
    changed = {k for k, d in _digests().items() if base.get(k) != d}
    assert {"filter", "pretrain", "finetune"} <= changed and "download" not in changed
    # How the teacher is reached (concurrency, retries, key variable) reruns nothing.
    assert _digests(ON, "data.instruct.generate.teacher.concurrency=1",
                    "data.instruct.generate.teacher.api_key_env=MY_KEY") == base
    # Another teacher reruns the instruct job alone: what it writes reaches the filter as a file.
    assert {k for k, d in _digests(ON, "data.instruct.generate.teacher.model=other").items()
            if base[k] != d} == {"instruct"}
    # Replacing LLaVA-Instruct instead of extending changes the mixture, not the generation.
    assert {k for k, d in _digests(ON, "data.instruct.generate.mix=replace").items()
            if base[k] != d} == {"filter", "pretrain", "finetune"}


# ----------------------------------------------------------------------------- released checkpoints
def test_a_released_checkpoint_plans_its_import_instead_of_training():
    released = plan("tiny-released")
    assert list(released["stages"])[:3] == ["synthesize", "download", "import"] and released["released"]
    assert not {"filter", "pretrain", "finetune"} & set(released["stages"])
    assert released["stages"]["import"]["outputs"]["model"] == \
        f"results/stages/import/{released['stages']['import']['id']}/model"
    assert plan("tiny")["released"] is False

    def digests(*overrides: str) -> dict[str, str]:
        return {k: st["config_digest"] for k, st in plan("tiny-released", list(overrides))["stages"].items()}

    base = digests()
    # Fetching other weights reruns the import and everything evaluated with them, not the data.
    other = digests("released.sources.0.url=other.tar")
    assert {k for k in base if base[k] != other[k]} == {"import"}  # the rest follow its output file
    # The generation settings of a benchmark rerun its evaluation only, as for a trained model.
    assert {k for k, d in digests("evaluation.benchmarks.pope.max_new_tokens=8").items() if base[k] != d} == {
        "eval/pope"}


def test_a_released_checkpoints_mlflow_parent_carries_no_training_settings():
    from llava_core.cli import _parent_config

    assert {"pretrain", "finetune"}.isdisjoint(_parent_config(load_experiment("tiny-released")))
    assert {"pretrain", "finetune"} <= set(_parent_config(load_experiment("tiny")))
