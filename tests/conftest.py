"""Shared fixtures: the repository root and a helper to run commands from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/bench_util.py


def run(cmd: list[str], timeout: int = 900, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` from the repository root, returning text output; fail loudly with the log."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                             f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def eval_samples() -> Path:
    """The slices of the real eval-kit files in ``../shared/eval_samples`` beside the checkout.

    Absent on a laptop: the tests that need them are skipped. Absent in CI (``CI=true``): they
    fail, so a CI run can never go green without having scored the real files."""
    from bench_util import SAMPLES

    if not SAMPLES.is_dir():
        msg = f"eval-kit samples not found at {SAMPLES} (../shared/eval_samples beside the checkout)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + "; CI must provide them")
        pytest.skip(msg)
    return SAMPLES


@pytest.fixture(scope="session")
def tiny_local(tmp_path_factory) -> Path:
    """The tiny DAG run once, locally, with ``snakemake --cores 2`` into a temporary results folder.

    Every job records the ``llava_core`` modules it imported in ``<results>/imports.jsonl``
    (test_workflow checks them against the plan's code digests)."""
    results = tmp_path_factory.mktemp("tiny-results")
    run(["snakemake", "--cores", "2", "--config", f"results={results}"], timeout=1500,
        env={"LLAVA_CORE_RECORD_IMPORTS": str(results / "imports.jsonl")})
    return results


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(backend_uri: str, port: int, artifacts: Path) -> subprocess.Popen:
    """An MLflow server on 127.0.0.1 (2 processes), ready when this returns."""
    import time
    import urllib.request

    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(["mlflow", "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--artifacts-destination", str(artifacts)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("mlflow server did not start within 90 s")


def slurm_cluster_up() -> bool:
    """A SLURM cluster answers here (CI starts one with .ci/slurm/start.sh). The SLURM tests skip
    without one, except under CI, where a missing cluster must fail them."""
    import shutil

    if not shutil.which("sinfo"):
        return False
    try:
        proc = subprocess.run(["timeout", "10", "sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    except OSError:
        return False
    return proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mixed", "allocated"))
