"""The MLflow run hierarchy across processes, and no metric lost while the server is away."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

from conftest import free_port, run, start_mlflow_server
from mlflow.tracking import MlflowClient

from llava_core.plan.stage import Stage
from llava_core.tracking import flatten, pending_journals, stage_run, variant_label


def _cfg(uri: str) -> NS:
    return NS(name="exp", tracking=NS(tracking_uri=uri, experiment_name="llava-core"))


def test_flatten_nests_keys_and_serialises_lists():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": None}


def test_variant_label_names_what_differs_from_the_preset():
    preset = {"finetune": {"learning_rate": 0.003, "epochs": 10}, "seed": 42}
    ours = {"finetune": {"learning_rate": 0.001, "epochs": 10}, "seed": 7}
    label, note = variant_label("tiny", ours, preset, ["finetune.learning_rate=1e-3", "seed=7"])
    assert label == "tiny finetune.learning_rate=0.001 seed=7"
    assert note.splitlines()[:3] == ["Experiment preset `tiny` with overrides:", "- `finetune.learning_rate=1e-3`",
                                     "- `seed=7`"]
    # An override that sets the preset's own value changes nothing: the plain name.
    assert variant_label("tiny", preset, preset, ["seed=42"])[0] == "tiny"
    many = {"finetune": {f"k{i}": i for i in range(60)}}
    long_label, _ = variant_label("tiny", many, {"finetune": {}}, [])
    assert len(long_label) <= 200 and long_label.endswith("more)") and long_label.startswith("tiny finetune.k0=0")


def test_parent_run_takes_the_variant_label_and_description(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {}, parent_config={"a": 1},
                   parent_label="exp a=1", parent_note="Experiment preset `exp` with overrides:"):
        pass
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("llava-core").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("llava.role") == "parent")
    assert parent.info.run_name == "exp a=1" and parent.data.tags["llava.experiment"] == "exp"
    assert parent.data.tags["mlflow.note.content"].startswith("Experiment preset `exp`")
    child = next(r for r in runs if r.data.tags.get("llava.role") != "parent")
    assert child.info.run_name == "exp/finetune"


def test_stages_of_separate_calls_share_one_parent(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = {"finetune": {"learning_rate": 2e-5}}
    for stage in ("pretrain", "finetune"):
        with stage_run(_cfg(uri), Stage(stage), tmp_path, tmp_path / "exp", {"lr": 1}, parent_config=config) as r:
            r.log_metrics({"eval/x/score": 50.0}, on_parent=True)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("llava-core").experiment_id])
    parent = [r for r in runs if r.data.tags.get("llava.role") == "parent"]
    assert len(parent) == 1 and parent[0].data.params["finetune.learning_rate"] == "2e-05"
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert sorted(r.data.tags["llava.stage"] for r in kids) == ["finetune", "pretrain"]
    assert parent[0].data.metrics["eval/x/score"] == 50.0
    # Another configuration of the same experiment gets its own parent.
    with stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {}, parent_config={"finetune": {}}):
        pass
    runs = client.search_runs([client.get_experiment_by_name("llava-core").experiment_id])
    assert len([r for r in runs if r.data.tags.get("llava.role") == "parent"]) == 2


def test_unreachable_server_loses_no_metric(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast; the default retries for minutes
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    # The server is down for the whole stage: the job finishes and keeps a journal.
    with stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {"finetune.learning_rate": 0.1},
                   parent_config={"seed": 1}) as r:
        for step in range(5):
            r.log_metrics({"train/loss": 5.0 - step}, step=step)
        r.log_metrics({"eval/gqa/score": 91.0}, on_parent=True)
        (tmp_path / "report.md").write_text("# report\n")
        r.log_artifact(tmp_path / "report.md")
    journals = pending_journals(tmp_path)
    assert len(journals) == 1
    server = start_mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", port, tmp_path / "artifacts")
    try:
        proc = run(["llava-core", "mlflow-sync", "--results", str(tmp_path)])
        assert proc.stdout.strip(), proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out == {"pending": 1, "synced": 1} and not pending_journals(tmp_path)
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("llava-core").experiment_id])
        child = next(r for r in runs if r.data.tags.get("llava.stage") == "finetune")
        parent = next(r for r in runs if r.data.tags.get("llava.role") == "parent")
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert [m.value for m in client.get_metric_history(child.info.run_id, "train/loss")] == [5, 4, 3, 2, 1]
        assert parent.data.metrics["eval/gqa/score"] == 91.0 and child.info.status == "FINISHED"
        assert child.data.params["finetune.learning_rate"] == "0.1"
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["report.md"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_preempted_stage_reattaches_to_its_run(tmp_path):
    import pytest

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SystemExit), stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {}) as first:
        first.log_metrics({"train/loss": 3.0}, step=1)
        raise SystemExit(75)  # what the runner raises after a signal-triggered checkpoint
    client = MlflowClient(uri)
    assert client.get_run(first.run_id).info.status == "KILLED"
    with stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {}) as second:
        second.log_metrics({"train/loss": 2.0}, step=2)
    assert second.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(first.run_id, "train/loss")] == [3.0, 2.0]
    with pytest.raises(RuntimeError), stage_run(_cfg(uri), Stage("finetune"), tmp_path, tmp_path / "exp", {}) as third:
        raise RuntimeError("a real failure")
    assert third.run_id != first.run_id and client.get_run(third.run_id).info.status == "FAILED"
