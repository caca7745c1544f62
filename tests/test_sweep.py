"""Variants in practice, on a small world: configuration A, then B, then A again (no training or
evaluation the third time, A's outputs untouched), then a 2 x 2 sweep of the stage-2 learning rate
and seed (one stage 1, four stage 2s), with its seed groups' statistics, MLflow's shared stage
runs, and `llava-core runs` / `gc` on the folders they left."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

from conftest import FEW_BENCHMARKS, ONLY_FEW, SMALL_WORLD, SWEEP, run

from llava_core.plan.inventory import collect, stage_folders


def test_a_then_b_then_a_recomputes_nothing_and_keeps_a(sweep_run):
    steps = sweep_run["steps"]
    assert steps["A"] == {"synthesize": 1, "download": 1, "filter": 1, "pretrain": 1, "finetune": 1,
                          "evaluate": len(FEW_BENCHMARKS), "report": 1, "summary": 1, "all": 1}
    # B shares A's data and stage 1 (the stage-2 learning rate is not stage 1's): stage 2 onwards only.
    assert steps["B"] == {"finetune": 1, "evaluate": len(FEW_BENCHMARKS), "report": 1, "summary": 1, "all": 1}
    assert steps["A again"] == {"summary": 1, "all": 1}  # the summary of what was asked, nothing else
    assert sweep_run["files_a"] and sweep_run["files_a_again"] == sweep_run["files_a"]
    a, b = sweep_run["plan_a"], sweep_run["plan_b"]
    (name_a,), (name_b,) = a["variants"], b["variants"]
    assert name_a != name_b and (sweep_run["results"] / name_a / "report.md").is_file()
    assert (sweep_run["results"] / name_b / "report.md").is_file()
    shared = {k for k in ("download", "filter", "pretrain")
              if a["variants"][name_a]["stages"][k] == b["variants"][name_b]["stages"][k]}
    assert shared == {"download", "filter", "pretrain"}
    assert a["variants"][name_a]["stages"]["finetune"] != b["variants"][name_b]["stages"]["finetune"]


def test_the_sweep_trains_one_stage_1_and_four_stage_2s(sweep_run):
    plan = sweep_run["plan"]
    assert len(plan["variants"]) == 4
    kinds = [e["kind"] for e in plan["stages"].values()]
    assert kinds.count("pretrain") == 1 and kinds.count("finetune") == 4 and kinds.count("evaluate") == 4 * len(FEW_BENCHMARKS)
    # A and B were two of its points: only the two seed-2 variants trained; every report reran for its group.
    assert sweep_run["steps"]["sweep"] == {"finetune": 2, "evaluate": 2 * len(FEW_BENCHMARKS), "report": 4,
                                           "summary": 1, "all": 1}
    names = list(plan["variants"])
    assert all(n.startswith("tiny+") for n in names) and len(set(names)) == 4
    groups = {}
    for v in plan["variants"].values():
        groups.setdefault(v["group"], []).append(v)
        assert set(v["axes"]) == {"finetune.learning_rate", "finetune.seed"} and v["sweep"] == SWEEP
    assert len(groups) == 2 and all(len(m) == 2 for m in groups.values())
    for members in groups.values():  # a group: one learning rate, both seeds
        assert {m["axes"]["finetune.learning_rate"] for m in members} != {"1e-3", "2e-3"}
        assert {m["axes"]["finetune.seed"] for m in members} == {"1", "2"}


def test_reports_show_each_groups_mean_std_and_n(sweep_run):
    results, plan = sweep_run["results"], sweep_run["plan"]
    for name, variant in plan["variants"].items():
        members = [m for m in plan["variants"].values() if m["group"] == variant["group"]]
        report = (results / name / "report.md").read_text()
        assert f"## The seeds of this configuration: group `{variant['group']}`, n = 2" in report
        assert "|mean - reference| > 2 x std / sqrt(n)" in report
        gqa_line = next(line for line in report.splitlines()[report.index("## The seeds") and 0:]
                        if line.startswith("| GQA |") and "±" in line)
        scores = [json.loads((Path(plan["stages"][m["stages"]["eval/gqa"]]["dir"]) / "scores.json").read_text())["score"]
                  for m in members]
        cells = [c.strip() for c in gqa_line.strip("|").split("|")]
        assert cells[2] == f"{statistics.fmean(scores):.1f} ± {statistics.stdev(scores):.1f}" and cells[3] == "2"
        chance = json.loads((Path(plan["stages"][members[0]["stages"]["eval/gqa"]]["dir"]) / "scores.json")
                            .read_text())["chance"]
        diff = statistics.fmean(scores) - chance
        marked = abs(diff) > 2 * statistics.stdev(scores) / math.sqrt(2)
        assert cells[4] == f"{diff:+.1f}" + ("*" if marked else "")
        assert (results / name / "report.png").read_bytes()[:4] == b"\x89PNG"
    summary = (results / "report.md").read_text()
    assert "## Seed groups" in summary and summary.count("(n = 2: ") == 2


def test_mlflow_one_run_per_shared_stage_linked_from_every_variant(sweep_run):
    from mlflow.tracking import MlflowClient

    results, plan = sweep_run["results"], sweep_run["plan"]
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    exp = client.get_experiment_by_name("llava-core")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = {r.data.tags["llava.variant"]: r for r in runs if r.data.tags.get("llava.role") == "parent"
               and r.data.tags.get("llava.sweep") == SWEEP}
    assert set(parents) == set(plan["variants"])
    pretrain_runs = [r for r in runs if r.data.tags.get("llava.stage") == "pretrain"]
    assert len(pretrain_runs) == 1  # one stage 1, one run
    for name, parent in parents.items():
        v = plan["variants"][name]
        assert parent.info.run_name == name and parent.data.tags["llava.group"] == v["group"]
        assert {parent.data.params[f"sweep.{k}"] for k in v["axes"]} == set(v["axes"].values())
        assert parent.data.tags["llava.stage_run.pretrain"] == pretrain_runs[0].info.run_id
        assert f"/runs/{pretrain_runs[0].info.run_id}" in parent.data.tags["mlflow.note.content"]
        assert "eval/gqa/score" in parent.data.metrics
        listed = json.loads((results / name / "stages.json").read_text())
        assert listed["pretrain"]["mlflow_run"] == pretrain_runs[0].info.run_id
        assert (results / name / "finetune").resolve() == Path(plan["stages"][v["stages"]["finetune"]]["dir"]).resolve()


def test_runs_lists_each_variants_stages_and_gc_never_deletes_what_a_variant_uses(sweep_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(sweep_run["results"], results, symlinks=True)
    args = ["--results", str(results), *[x for o in (*SMALL_WORLD, *ONLY_FEW) for x in ("-o", o)]]
    listing = json.loads(run(["llava-core", "runs", "tiny", "--sweep", SWEEP, "--json", *args]).stdout)
    assert {r["variant"] for r in listing} == set(sweep_run["plan"]["variants"])
    assert all(r["status"] == "complete" for r in listing)
    pretrain = [r for r in listing if r["stage"] == "pretrain"]
    assert len({r["dir"] for r in pretrain}) == 1 and all(r["shared_by"] == 4 and r["bytes"] > 0 for r in pretrain)
    # Everything is used by the sweep: nothing to collect.
    assert "0 folders no listed variant uses" in run(["llava-core", "gc", "tiny", "--sweep", SWEEP, *args]).stdout

    # Keep only A: B's and the seed-2 variants' stage 2s, evaluations and reports go, A's never.
    a = sweep_run["plan_a"]
    (name_a,) = a["variants"]
    used_by_a = {Path(e["dir"]).name for e in a["stages"].values()}
    a_args = ["--results", str(results), *[x for o in ("finetune.learning_rate=1e-3", "finetune.seed=1")
                                           for x in ("-o", o)], *args[2:]]
    listed = run(["llava-core", "gc", "tiny", *a_args]).stdout
    assert "nothing deleted: run again with --yes" in listed
    plan_a = json.loads(run(["llava-core", "plan", "tiny", *a_args]).stdout)
    unused = collect(plan_a, results, [])
    kinds = sorted(c.kind for c, _ in unused)
    assert kinds.count("finetune") == 3 and kinds.count("evaluate") == 3 * len(FEW_BENCHMARKS) and kinds.count("report") == 3
    assert not {c.path.name for c, _ in unused} & used_by_a and all(c.path.exists() for c, _ in unused)
    # While Snakemake holds the lock, --yes deletes nothing.
    locks = tmp_path / "work" / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    held = run(["llava-core", "gc", "tiny", *a_args, "--yes", "--workdir", str(tmp_path / "work")], check=False)
    assert held.returncode == 1 and "holds the lock" in held.stderr
    assert all(c.path.exists() for c, _ in unused)
    # --keep spares a variant outside the config, then --yes deletes the rest.
    (name_b,) = sweep_run["plan_b"]["variants"]
    kept = collect(plan_a, results, [name_b])
    assert len(kept) < len(unused) and not any(c.path.name == name_b for c, _ in kept)
    run(["llava-core", "gc", "tiny", *a_args, "--keep", name_b, "--yes", "--workdir", str(tmp_path)])
    assert not any(c.path.exists() for c, _ in kept)
    assert all(Path(e["dir"]).exists() for e in plan_a["stages"].values())
    assert (results / name_a / "report.md").is_file() and (results / name_b / "report.md").is_file()
    assert len(stage_folders(results)) < len(stage_folders(sweep_run["results"]))
