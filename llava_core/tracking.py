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
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llava_core import __version__
from llava_core.exit_codes import PREEMPTED
from llava_core.io import write_json
from llava_core.plan.stage import Stage

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


def variant_label(experiment: str, config: Mapping[str, Any], preset: Mapping[str, Any],
                  overrides: list[str], max_len: int = 200) -> tuple[str, str]:
    """A parent run's name and description: the experiment and every setting in which ``config``
    differs from its ``preset`` (``"tiny finetune.learning_rate=0.001"``), so two variants can be
    told apart on MLflow's compare page; the description also lists the overrides as given."""
    ours, base = flatten(config), flatten(preset)
    diffs = [f"{k}={ours.get(k, '(unset)')}" for k in sorted(set(ours) | set(base)) if ours.get(k) != base.get(k)]
    label = " ".join([experiment, *diffs])
    if len(label) > max_len:  # MLflow truncates long names; keep the first settings and a count
        shown = []
        for d in diffs:
            if len(" ".join([experiment, *shown, d])) > max_len - 12:
                break
            shown.append(d)
        label = " ".join([experiment, *shown, f"(+{len(diffs) - len(shown)} more)"])
    lines = [f"Experiment preset `{experiment}`" + (" with overrides:" if overrides else ", no overrides.")]
    lines += [f"- `{o}`" for o in overrides]
    if diffs:
        lines += ["", "Differs from the preset in:", *[f"- `{d}`" for d in diffs]]
    return label, "\n".join(lines)


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

    # An unreachable server should cost seconds, not MLflow's default minutes of retries:
    # the job goes on and records locally instead (see StageRun).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
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
                  config: Mapping[str, Any] | None = None, label: str | None = None, note: str = "",
                  tags: Mapping[str, str] | None = None, extra_params: Mapping[str, Any] | None = None) -> str:
    """The parent run of this experiment configuration, created by the first job that asks.

    A changed configuration (e.g. another learning rate) gets a new parent, so two variants sit
    side by side in the runs table; stages rerun for it nest under the new parent. ``label`` names
    it (default ``run_name``, the experiment), ``note`` is its description, ``tags`` its own tags
    (a variant's ``llava.variant``, ``llava.group``, ``llava.sweep``) and ``extra_params`` params
    that do not identify it (the sweep axes that made the variant): both are added to a parent
    that exists already (a variant run alone first, then as a point of a sweep, is one parent).
    """
    digest = hashlib.sha256(json.dumps(config or {}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    record = exp_dir / "mlflow_parent.json"
    with _locked(exp_dir / ".mlflow_parent.lock"):
        known = json.loads(record.read_text()) if record.exists() else {}
        entry = known.get(uri) or {}
        if entry.get("config") == digest:
            try:
                found = client.get_run(entry["run_id"])
                if found.info.lifecycle_stage == "active":
                    _update_parent(client, found, tags or {}, extra_params or {})
                    return entry["run_id"]
            except Exception:
                log.warning("parent run %s is gone from %s; creating a new one", entry["run_id"], uri)
        tags = {"llava.role": "parent", "llava.experiment": run_name, "llava.config_hash": digest,
                "llava_core.version": __version__, "git.commit": _git_commit(), **(tags or {})}
        if note:
            tags["mlflow.note.content"] = note  # the run's description in the UI
        run = client.create_run(experiment_id, run_name=label or run_name, tags=tags)
        _log_params(client, run.info.run_id, {**(config or {}), **(extra_params or {})})
        known[uri] = {"run_id": run.info.run_id, "config": digest}
        write_json(record, known)
        return run.info.run_id


def _update_parent(client, run, tags: Mapping[str, str], extra_params: Mapping[str, Any]) -> None:
    """Add the tags and the params a parent does not have yet (params are write-once in MLflow)."""
    for key, value in tags.items():
        if run.data.tags.get(key) != value:
            client.set_tag(run.info.run_id, key, value)
    new = {k: v for k, v in flatten(dict(extra_params)).items() if k not in run.data.params}
    if new:
        _log_params(client, run.info.run_id, new)


def _log_params(client, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    flat = [Param(k[:250], str(v)[:6000]) for k, v in flatten(dict(params)).items()]
    for i in range(0, len(flat), 100):
        client.log_batch(run_id, params=flat[i:i + 100])


class StageRun:
    """A child run for one stage of one experiment (or of a dataset, under ``data:<name>``).

    Tracking never stops a job: if the tracking server cannot be reached, at the start or
    mid-way, every further call is written to a journal under ``<dir>/.mlflow/pending/`` and
    replayed when the run finishes, or later with ``llava-core mlflow-sync``.
    """

    def __init__(self, uri: str, stage: Stage | None, journal_dir: Path | None = None):
        """A handle with no MLflow run yet: use :meth:`create` or :meth:`attach`."""
        self.uri, self.stage = uri, stage
        self.journal = (Path(journal_dir) / f"{stage.slug}-{uuid.uuid4().hex[:8]}.jsonl"
                        if journal_dir is not None and stage is not None else None)
        self.offline = False
        self.run_id = self.parent_id = None
        self.client = None

    @classmethod
    def create(cls, *, uri: str, experiment_name: str, run_name: str, stage: Stage, exp_dir: Path | None,
               params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
               parent_config: Mapping[str, Any] | None = None, journal_dir: Path | None = None,
               parent_label: str | None = None, parent_note: str = "",
               parent_tags: Mapping[str, str] | None = None, parent_params: Mapping[str, Any] | None = None
               ) -> StageRun:
        """A new child run ``<run_name>/<stage>`` (under the experiment's parent when ``exp_dir`` is
        given, named ``parent_label`` and described by ``parent_note`` if it is created now);
        recorded in the journal if the server cannot be reached."""
        run = cls(uri, stage, journal_dir)
        create = {"uri": uri, "experiment_name": experiment_name, "run_name": run_name, "stage": stage.key,
                  "exp_dir": str(exp_dir) if exp_dir is not None else None, "params": dict(params or {}),
                  "tags": {**_default_tags(stage.key, run_name), **(tags or {})},
                  "parent_config": dict(parent_config or {}), "parent_label": parent_label,
                  "parent_note": parent_note, "parent_tags": dict(parent_tags or {}),
                  "parent_params": dict(parent_params or {})}
        try:
            run._create(**create)
        except Exception as e:  # noqa: BLE001 - any tracking failure must not stop the job
            run._go_offline(e, {"create": create})
        return run

    @classmethod
    def attach(cls, *, uri: str, run_id: str, parent_id: str | None, stage: Stage | None = None,
               journal_dir: Path | None = None) -> StageRun:
        """A handle on a run that exists already (a preempted stage's, or a journal's)."""
        run = cls(uri, stage, journal_dir)
        run.client = _client(uri)
        run.run_id, run.parent_id = run_id, parent_id
        return run

    def _create(self, *, uri, experiment_name, run_name, stage, exp_dir, params, tags, parent_config,
                parent_label=None, parent_note="", parent_tags=None, parent_params=None) -> None:
        self.client = _client(uri)
        experiment_id = _experiment_id(self.client, experiment_name)
        if exp_dir is not None:
            self.parent_id = parent_run_id(self.client, experiment_id, run_name, Path(exp_dir), uri, parent_config,
                                           label=parent_label, note=parent_note, tags=parent_tags,
                                           extra_params=parent_params)
            tags = {**tags, "mlflow.parentRunId": self.parent_id}
        self.run_id = self.client.create_run(experiment_id, run_name=f"{run_name}/{stage}", tags=tags).info.run_id
        if params:
            _log_params(self.client, self.run_id, params)

    # -- the journal --------------------------------------------------------------------------
    def _go_offline(self, error: BaseException, header: dict | None = None) -> None:
        if self.journal is None:
            raise error
        log.warning("MLflow at %s unreachable (%s); recording %s locally in %s", self.uri,
                    str(error).splitlines()[0][:200], self.stage, self.journal)
        self.offline = True
        header = header or {"attach": {"uri": self.uri, "run_id": self.run_id, "parent_id": self.parent_id}}
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")

    def _call(self, op: str, **kwargs: Any) -> None:
        if not self.offline:
            try:
                getattr(self, f"_{op}")(**kwargs)
                return
            except Exception as e:  # noqa: BLE001
                self._go_offline(e)
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"op": op, "kwargs": kwargs}, default=str) + "\n")

    # -- what stages report -------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._call("log_params", params=dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, on_parent: bool = False) -> None:
        """Log finite numeric metrics; ``on_parent`` copies them onto the parent run too."""
        values = {k: float(v) for k, v in metrics.items()
                  if isinstance(v, (int, float)) and math.isfinite(float(v))}
        self._call("log_metrics", metrics=values, step=step, on_parent=on_parent, ts=int(time.time() * 1000))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if Path(path).exists():
            self._call("log_artifact", path=str(Path(path).resolve()), artifact_path=artifact_path)

    def log_artifact_on_parent(self, path: str | Path) -> None:
        if Path(path).exists():
            self._call("log_artifact_on_parent", path=str(Path(path).resolve()))

    def log_dataset(self, name: str, digest: str, source: str, context: str, profile: Mapping[str, Any]) -> None:
        """Record a dataset as an input of this run (MLflow's Datasets panel): its name, a digest of
        its bytes, where it lives, and a profile of counts (kept, dropped by reason)."""
        self._call("log_dataset", name=name, digest=digest, source=source, context=context,
                   profile=json.dumps(dict(profile), sort_keys=True))

    def finish(self, status: str = "FINISHED") -> None:
        self._call("finish", status=status)
        if self.offline:
            sync_journal(self.journal)

    def finish_parent(self, status: str = "FINISHED") -> None:
        """Mark the parent done (the last stage of an experiment calls this)."""
        self._call("finish_parent", status=status)

    def link_stage_runs(self, stage_runs: Mapping[str, str]) -> None:
        """Record on the parent which run holds each stage the variant uses (``llava.stage_run.<stage>``
        tags, and links in its description): a stage shared by several variants is one run, nested
        under the variant that ran it first."""
        self._call("link_stage_runs", stage_runs=dict(stage_runs))

    # -- the MLflow calls behind them ---------------------------------------------------------
    def _log_params(self, params) -> None:
        _log_params(self.client, self.run_id, params)

    def _log_metrics(self, metrics, step, on_parent, ts) -> None:
        from mlflow.entities import Metric

        rows = [Metric(k, v, ts, step) for k, v in metrics.items()]
        for run_id in [self.run_id] + ([self.parent_id] if on_parent and self.parent_id else []):
            for i in range(0, len(rows), 500):
                self.client.log_batch(run_id, metrics=rows[i:i + 500])

    def _log_artifact(self, path, artifact_path) -> None:
        if Path(path).is_dir():
            self.client.log_artifacts(self.run_id, path, artifact_path)
        else:
            self.client.log_artifact(self.run_id, path, artifact_path)

    def _log_artifact_on_parent(self, path) -> None:
        if self.parent_id:
            self.client.log_artifact(self.parent_id, path)

    def _log_dataset(self, name, digest, source, context, profile) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        ds = Dataset(name=name, digest=digest[:36], source_type="local", source=json.dumps({"uri": source}),
                     profile=profile)
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(ds, [InputTag("mlflow.data.context", context)])])

    def _finish(self, status) -> None:
        self.client.set_terminated(self.run_id, status)

    def _finish_parent(self, status) -> None:
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status)

    def _link_stage_runs(self, stage_runs) -> None:
        if not self.parent_id or not stage_runs:
            return
        parent = self.client.get_run(self.parent_id)
        for stage, run_id in stage_runs.items():
            self.client.set_tag(self.parent_id, f"llava.stage_run.{stage}", run_id)
        note = parent.data.tags.get("mlflow.note.content", "").split("\n\nStage runs")[0]
        exp = parent.info.experiment_id
        lines = [f"- {stage}: [{run_id}](#/experiments/{exp}/runs/{run_id})" for stage, run_id in stage_runs.items()]
        self.client.set_tag(self.parent_id, "mlflow.note.content",
                            (note + "\n\n" if note else "") + "Stage runs (shared stages run once, under the "
                            "variant that ran them first):\n" + "\n".join(lines))


def _default_tags(stage: str, run_name: str) -> dict[str, str]:
    tags = {"llava.stage": stage, "llava.experiment": run_name, "llava.role": "stage",
            "llava_core.version": __version__, "git.commit": _git_commit(),
            "llava.rule": os.environ.get("LLAVA_RULE", stage)}
    if os.environ.get("SLURM_JOB_ID"):
        tags["slurm.job_id"] = os.environ["SLURM_JOB_ID"]
    return tags


def sync_journal(path: Path) -> bool:
    """Replay one journal onto its tracking server; True (and the journal removed) on success."""
    path = Path(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header, ops = lines[0], lines[1:]
    try:
        if "create" in header:
            run = StageRun(header["create"]["uri"], Stage.parse(header["create"]["stage"]))
            run._create(**header["create"])
        else:
            run = StageRun.attach(**header["attach"])
        for entry in ops:
            getattr(run, f"_{entry['op']}")(**entry["kwargs"])
    except Exception as e:  # noqa: BLE001
        log.warning("MLflow still unreachable (%s); %s kept: run `llava-core mlflow-sync` later",
                    str(e).splitlines()[0][:200], path)
        return False
    path.unlink()
    log.info("replayed %d tracking calls from %s", len(ops), path)
    return True


def pending_journals(results_dir: str | Path) -> list[Path]:
    """Journals of runs recorded while the tracking server was unreachable."""
    return sorted(Path(results_dir).rglob(".mlflow/pending/*.jsonl"))


@contextlib.contextmanager
def stage_run(cfg, stage: Stage, results_dir: str | Path, exp_dir: Path | None, params: Mapping[str, Any],
              run_name: str | None = None, parent_config: Mapping[str, Any] | None = None,
              parent_label: str | None = None, parent_note: str = "", parent_tags: Mapping[str, str] | None = None,
              parent_params: Mapping[str, Any] | None = None, record_dir: Path | None = None) -> Iterator[StageRun]:
    """Open a child run for ``stage``; it ends FAILED if the block raises. ``parent_label``,
    ``parent_note`` and ``parent_tags`` name, describe and tag the variant's parent run if this job
    creates it. The run's record (``.mlflow/<stage>.json``: its id) goes into ``record_dir`` (the
    stage's folder, where the variants sharing the stage find it; default the experiment's folder).

    A stage preempted by SLURM (exit status 75 after a checkpoint) ends KILLED and leaves a note,
    so its rerun, which resumes training, re-attaches to the same run: one run, one loss curve.
    """
    uri = cfg.tracking.tracking_uri or default_tracking_uri(results_dir)
    record_dir = Path(record_dir or exp_dir or results_dir) / ".mlflow"
    note = record_dir / f"{stage.slug}.preempted.json"
    journal_dir = record_dir / "pending"
    previous = json.loads(note.read_text()) if note.is_file() else None
    run = None
    if previous and previous.get("uri") == uri and previous.get("run_id"):
        try:
            run = StageRun.attach(uri=uri, run_id=previous["run_id"], parent_id=previous.get("parent_id"),
                                  stage=stage, journal_dir=journal_dir)
            run.client.update_run(run.run_id, status="RUNNING")
            log.info("re-attached to MLflow run %s of the preempted %s", run.run_id, stage)
        except Exception as e:  # noqa: BLE001 - unreachable or deleted: start a new run instead
            log.warning("cannot re-attach to MLflow run %s (%s); starting a new one", previous["run_id"], e)
            run = None
        note.unlink()
    if run is None:
        run = StageRun.create(uri=uri, experiment_name=cfg.tracking.experiment_name, run_name=run_name or cfg.name,
                              stage=stage, exp_dir=exp_dir, params=params, parent_config=parent_config,
                              parent_label=parent_label, parent_note=parent_note, parent_tags=parent_tags,
                              parent_params=parent_params, journal_dir=journal_dir)
    try:
        yield run
    except SystemExit as e:
        if e.code == PREEMPTED and run.run_id:
            write_json(note, {"uri": uri, "run_id": run.run_id, "parent_id": run.parent_id})
            run.finish("KILLED")
        else:
            run.finish("FAILED")
        raise
    except BaseException:
        run.finish("FAILED")
        raise
    run.finish("FINISHED")
    write_json(record_dir / f"{stage.slug}.json",
               {"run_id": run.run_id, "parent_run_id": run.parent_id, "tracking_uri": uri})
