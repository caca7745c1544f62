"""`snakemake --report report.html` after the tiny DAG: Snakemake's self-contained HTML report holds
the benchmark table (with the paper's numbers where the preset names a row of the paper), the score
plot, both training stages' loss and learning-rate curves, the data summary (all in the
experiment's category) and the jobs' runtimes.

Snakemake writes its data into the page as JavaScript: ``var results = {...}`` maps each flagged
file to its name, caption (HTML) and ``data_uri`` (the file itself, base64-encoded); the
statistics' Vega-Lite spec (``var runtimes_spec``) holds one runtime per job. The test decodes
these and checks the files' contents, not only their names."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest
from conftest import run

from llava_core.config.compose import load_experiment
from llava_core.evaluate.paper import PAPER_NUMBERS


def _script_var(page: str, script_id: str, name: str):
    m = re.search(rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>', page, re.S)
    assert m, f"no `var {name}` in the report"
    return json.loads(m.group(1))


def _decode(data_uri: str) -> bytes:
    head, _, payload = data_uri.partition(";base64,")
    assert head.startswith("data:") and payload, data_uri[:80]
    return base64.b64decode(payload)


@pytest.fixture(scope="module")
def report(tiny_local, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report") / "report.html"
    # From the repository root, like the run: Snakemake's records of it are in .snakemake/ there.
    run(["snakemake", "--report", str(out), "--config", f"results={tiny_local}"], timeout=600)
    page = out.read_text(encoding="utf-8")
    results = _script_var(page, "results", "results")
    by_file = {str(Path(path).relative_to(tiny_local)): entry for path, entry in results.items()}
    return {"page": page, "results": by_file, "categories": _script_var(page, "categories", "categories"),
            "runtimes": _script_var(page, "runtimes", "runtimes_spec"),
            "workflow": _script_var(page, "workflow-desc", "workflow_desc"), "dir": tiny_local}


def test_it_is_a_snakemake_report_describing_the_pipeline(report):
    assert "<title>Snakemake Report</title>" in report["page"]
    assert "LLaVA-1.5, reproduced end to end" in report["workflow"]
    assert "pretrain" in report["workflow"] and "Statistics" in report["workflow"]
    # One category (the experiment), with its results in three subcategories.
    assert set(report["categories"]) == {"tiny"}
    cats = report["categories"]["tiny"]
    assert set(cats) == {"Benchmarks", "Training", "Data"}
    names = {sub: sorted(Path(p).name for p in paths) for sub, paths in cats.items()}
    assert names == {"Benchmarks": ["report.csv", "report.png"], "Training": ["finetune.png", "pretrain.png"],
                     "Data": ["data_summary.csv"]}


def test_benchmark_table(report):
    entry = report["results"]["tiny/report.csv"]
    data = _decode(entry["data_uri"])
    assert data == (report["dir"] / "tiny" / "report.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert {"benchmark", "title", "paper", "ours", "delta"} <= set(rows[0])
    # The paper's numbers are those of the row the preset names (none: an empty column).
    paper = PAPER_NUMBERS.get(load_experiment("tiny").paper_row or "", {})
    by_bench = {r["benchmark"]: r for r in rows}
    for title, bench in (("GQA", "gqa"), ("POPE", "pope"), ("MME", "mme")):
        row = by_bench[bench]
        assert row["title"].startswith(title)
        assert (float(row["paper"]) == pytest.approx(paper[bench])) if bench in paper else row["paper"] == ""
        assert float(row["ours"]) == float(row["ours"])  # scored: not NaN
    # The caption shows the table itself: every column of the file (whatever they are), every cell.
    caption = entry["caption"]
    assert "<table" in caption
    for col in rows[0]:
        assert f">{col}</th>" in caption
    for bench in ("gqa", "pope", "mme"):
        for cell in filter(None, by_bench[bench].values()):
            assert f"<td>{cell}</td>" in caption, (bench, cell)


def test_score_plot(report):
    entry = report["results"]["tiny/report.png"]
    assert entry["mime_type"] == "image/png"
    assert _decode(entry["data_uri"]) == (report["dir"] / "tiny" / "report.png").read_bytes()


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_loss_and_learning_rate_curves_per_stage(report, stage):
    entry = report["results"][f"tiny/curves/{stage}.png"]
    assert entry["mime_type"] == "image/png" and entry["labels"]["stage"].startswith(stage)
    png = _decode(entry["data_uri"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == (report["dir"] / "tiny" / "curves" / f"{stage}.png").read_bytes()
    assert "loss" in entry["caption"] and "learning rate" in entry["caption"]
    # What the plot draws: every logged step's loss and learning rate, from the stage's metrics.json.
    metrics = json.loads((report["dir"] / "tiny" / stage / "metrics.json").read_text())
    history = metrics["history"]
    assert len(history) >= 2 and [h["loss"] for h in history] == metrics["loss_history"]
    assert all(h["learning_rate"] is not None and h["learning_rate"] >= 0 for h in history)
    assert [h["step"] for h in history] == sorted(h["step"] for h in history)
    assert max(h["learning_rate"] for h in history) > 0


def test_data_manifest_summary(report):
    entry = report["results"]["tiny/data_summary.csv"]
    table = list(csv.reader(io.StringIO(_decode(entry["data_uri"]).decode())))
    assert table[0] == ["count", "pretrain", "finetune"]
    rows = {r[0]: r[1:] for r in table[1:]}
    manifest = json.loads((report["dir"] / "tiny" / "filtered" / "manifest.json").read_text())  # the variant's link
    for label, key in (("records read", "records"), ("kept", "kept"), ("dropped", "dropped")):
        assert rows[label] == [str(manifest[s][key]) for s in ("pretrain", "finetune")], label
    for s_i, s in enumerate(("pretrain", "finetune")):
        for reason, n in manifest[s]["reasons"].items():
            assert rows[f"dropped: {reason}"][s_i] == str(n)
    assert "<table" in entry["caption"] and "<td>kept</td>" in entry["caption"]


def test_runtime_statistics_of_the_jobs(report):
    runtimes = report["runtimes"]["data"]["values"]
    rules = {r["rule"] for r in runtimes}
    assert {"synthesize", "download", "filter", "pretrain", "finetune", "evaluate", "report", "summary"} <= rules
    assert sum(r["rule"] == "evaluate" for r in runtimes) == len(load_experiment("tiny").evaluation.benchmarks)
    assert all(r["runtime"] >= 0 for r in runtimes)
    assert max(r["runtime"] for r in runtimes if r["rule"] in ("pretrain", "finetune")) > 0


# ----------------------------------------------------------------------------- without the DAG
def test_curves_of_a_metrics_file_without_history(tmp_path):
    """metrics.json from before ``history``: the losses against the log entry, no learning rate."""
    from llava_core.evaluate.curves import plot_training_curves, training_history

    history, xlabel = training_history({"loss_history": [3.0, 2.0]})
    assert [h["step"] for h in history] == [1, 2] and xlabel != "step"
    for i, metrics in enumerate(({"loss_history": [3.0, 2.0]}, {}, {"history": [{"step": 5, "loss": 1.0,
                                                                              "learning_rate": 1e-3}]})):
        plot_training_curves(metrics, "x", tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").read_bytes()[:4] == b"\x89PNG"


def test_data_summary_lists_every_reason_of_any_set():
    from llava_core.evaluate.data_summary import data_summary_rows

    manifest = {"finetune": {"records": 5, "kept": 3, "dropped": 2, "reasons": {"duplicate": 1, "missing_image": 1}},
                "pretrain": {"records": 4, "kept": 4, "dropped": 0, "reasons": {}}}
    rows = data_summary_rows(manifest)
    assert rows[0] == ["count", "pretrain", "finetune"]
    assert {r[0]: r[1:] for r in rows[1:]} == {"records read": [4, 5], "kept": [4, 3], "dropped": [0, 2],
                                               "dropped: duplicate": [0, 1], "dropped: missing_image": [0, 1]}
