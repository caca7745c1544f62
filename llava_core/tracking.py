"""The MLflow run hierarchy: one parent run per experiment, one child run per stage or benchmark.

Jobs run in separate processes (and on separate SLURM nodes), so the parent run id is kept in
``<experiment dir>/mlflow_parent.json`` and created once under a file lock; each child carries
the ``mlflow.parentRunId`` tag so the UI nests it. The rest of the package reports through
:class:`StageRun` and never calls MLflow directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llava_core import __version__
from llava_core.io import write_json

log = logging.getLogger(__name__)


def default_tracking_uri(results_dir: str | Path) -> str:
    """A sqlite store under the results folder: no server needed."""
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become JSON strings (MLflow params are flat)."""
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list):
        out[prefix[:-1]] = json.dumps(obj)
    else:
        out[prefix[:-1]] = obj
    return out


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _client(uri: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another job created it between the two calls
        return client.get_experiment_by_name(name).experiment_id


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def parent_run_id(client, experiment_id: str, run_name: str, exp_dir: Path, uri: str,
                  config: Mapping[str, Any] | None = None) -> str:
    """The parent run of this experiment configuration, created by the first job that asks.

    A changed configuration (e.g. another learning rate) gets a new parent, so two variants sit
    side by side in the runs table; stages rerun for it nest under the new parent.
    """
    digest = hashlib.sha256(json.dumps(config or {}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    record = exp_dir / "mlflow_parent.json"
    with _locked(exp_dir / ".mlflow_parent.lock"):
        known = json.loads(record.read_text()) if record.exists() else {}
        entry = known.get(uri) or {}
        if entry.get("config") == digest:
            try:
                if client.get_run(entry["run_id"]).info.lifecycle_stage == "active":
                    return entry["run_id"]
            except Exception:
                log.warning("parent run %s is gone from %s; creating a new one", entry["run_id"], uri)
        run = client.create_run(experiment_id, run_name=run_name,
                                tags={"llava.role": "parent", "llava.experiment": run_name,
                                      "llava.config_hash": digest, "llava_core.version": __version__,
                                      "git.commit": _git_commit()})
        _log_params(client, run.info.run_id, config or {})
        known[uri] = {"run_id": run.info.run_id, "config": digest}
        write_json(record, known)
        return run.info.run_id


def _log_params(client, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    flat = [Param(k[:250], str(v)[:6000]) for k, v in flatten(dict(params)).items()]
    for i in range(0, len(flat), 100):
        client.log_batch(run_id, params=flat[i:i + 100])


class StageRun:
    """A child run for one stage of one experiment (or a parentless run for a dataset stage)."""

    def __init__(self, *, uri: str, experiment_name: str, run_name: str, stage: str,
                 exp_dir: Path | None, params: Mapping[str, Any] | None = None,
                 tags: Mapping[str, str] | None = None, parent_config: Mapping[str, Any] | None = None):
        self.client = _client(uri)
        self.experiment_id = _experiment_id(self.client, experiment_name)
        self.parent_id = (parent_run_id(self.client, self.experiment_id, run_name, exp_dir, uri, parent_config)
                          if exp_dir is not None else None)
        all_tags = {"llava.stage": stage, "llava.experiment": run_name, "llava.role": "stage",
                    "llava_core.version": __version__, "git.commit": _git_commit(),
                    "llava.rule": os.environ.get("LLAVA_RULE", stage)}
        if os.environ.get("SLURM_JOB_ID"):
            all_tags["slurm.job_id"] = os.environ["SLURM_JOB_ID"]
        if self.parent_id:
            all_tags["mlflow.parentRunId"] = self.parent_id
        all_tags.update(tags or {})
        self.run_id = self.client.create_run(self.experiment_id, run_name=f"{run_name}/{stage}",
                                             tags=all_tags).info.run_id
        if params:
            self.log_params(params)

    def log_params(self, params: Mapping[str, Any]) -> None:
        _log_params(self.client, self.run_id, params)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, on_parent: bool = False) -> None:
        """Log finite numeric metrics; ``on_parent`` copies them onto the parent run too."""
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        rows = [Metric(k, float(v), ts, step) for k, v in metrics.items()
                if isinstance(v, (int, float)) and math.isfinite(float(v))]
        targets = [self.run_id] + ([self.parent_id] if on_parent and self.parent_id else [])
        for run_id in targets:
            for i in range(0, len(rows), 500):
                self.client.log_batch(run_id, metrics=rows[i:i + 500])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifact_on_parent(self, path: str | Path) -> None:
        if self.parent_id and Path(path).exists():
            self.client.log_artifact(self.parent_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def finish_parent(self, status: str = "FINISHED") -> None:
        """Mark the parent done (the last stage of an experiment calls this)."""
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status)


@contextlib.contextmanager
def stage_run(cfg, stage: str, results_dir: str | Path, exp_dir: Path | None, params: Mapping[str, Any],
              run_name: str | None = None, parent_config: Mapping[str, Any] | None = None) -> Iterator[StageRun]:
    """Open a child run for ``stage``; it ends FAILED if the block raises."""
    uri = cfg.tracking.tracking_uri or default_tracking_uri(results_dir)
    run = StageRun(uri=uri, experiment_name=cfg.tracking.experiment_name, run_name=run_name or cfg.name,
                   stage=stage, exp_dir=exp_dir, params=params, parent_config=parent_config)
    try:
        yield run
    except BaseException:
        run.finish("FAILED")
        raise
    run.finish("FINISHED")
    write_json(Path(exp_dir or results_dir) / ".mlflow" / f"{stage.replace('/', '_')}.json",
               {"run_id": run.run_id, "parent_run_id": run.parent_id, "tracking_uri": uri})
