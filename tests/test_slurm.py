"""The tiny DAG on a real one-node SLURM cluster (.ci/slurm/start.sh), run exactly as a new user
would: ``llava-core cluster setup``, ``llava-core cluster check``, then ``snakemake --profile slurm``.

One run covers four claims: setup writes a profile Snakemake finds by its bare name and check
passes; every stage runs as a SLURM job to the end from a copy of the workflow (the code digests
work from there: the copy's plan equals the repository's and a dry run afterwards has nothing to
do); a training job cancelled with ``scancel`` is retried by Snakemake and resumes from its last
checkpoint; and the scores equal those of the local run. Four benchmarks of different formats
(FEW_BENCHMARKS) stand for the 12 here: the local tiny run scores all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FEW_BENCHMARKS, ONLY_FEW, ROOT, run, slurm_cluster_up

# CI starts the cluster, so there a missing cluster is a failure, not a skip.
pytestmark = pytest.mark.skipif(not slurm_cluster_up() and not os.environ.get("CI"),
                                reason="no SLURM cluster here: run .ci/slurm/install.sh && .ci/slurm/start.sh")


def _squeue() -> list[tuple[str, str]]:
    out = subprocess.run(["timeout", "10", "squeue", "-h", "-o", "%i|%k|%j"], capture_output=True, text=True)
    return [(line.split("|")[0], line) for line in out.stdout.splitlines() if line.strip()]


def _in(workdir, cmd: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    return proc


def _digests(plan: dict) -> dict:
    return {k: (s["config_digest"], s["code_digest"]) for k, s in plan["stages"].items()}


def test_tiny_dag_on_slurm_survives_a_cancelled_job(tmp_path, tiny_local):
    # A working copy of the workflow, so that results land there and not in the repository.
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(ROOT / "Snakefile", work / "Snakefile")
    for folder in ("workflow", "config", "envs"):  # envs/: the rules name their conda environment
        shutil.copytree(ROOT / folder, work / folder)
    results = work / "results"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    setup = _in(work, ["llava-core", "cluster", "setup", "--yes"], env)
    assert (tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml").is_file(), setup.stdout
    check = _in(work, ["llava-core", "cluster", "check"], env)
    assert "0 fail" in check.stdout, check.stdout
    # The copy plans exactly what the repository plans: same config and code digests.
    only_few = [x for o in ONLY_FEW for x in ("-o", o)]
    plan_here = json.loads(_in(work, ["llava-core", "plan", "tiny", "--results", str(results), *only_few], env).stdout)
    plan_repo = json.loads(run(["llava-core", "plan", "tiny", "--results", str(results), *only_few]).stdout)
    assert _digests(plan_here) == _digests(plan_repo)
    (name, variant), = plan_here["variants"].items()
    config = ["--config", "overrides=" + " ".join(ONLY_FEW)]

    log = open(tmp_path / "snakemake.log", "w")
    proc = subprocess.Popen(["timeout", "-k", "10", "1800", "snakemake", "--profile", "slurm", *config], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        finetune = plan_here["stages"][variant["stages"]["finetune"]]
        ckpts = Path(finetune["dir"]) / "checkpoints"
        ckpts = ckpts if ckpts.is_absolute() else work / ckpts
        deadline = time.time() + 1200
        while time.time() < deadline and proc.poll() is None and not any(ckpts.glob("checkpoint-*")):
            time.sleep(2)
        assert proc.poll() is None, (tmp_path / "snakemake.log").read_text()[-3000:]
        finetune = [jid for jid, line in _squeue() if "finetune" in line]
        assert finetune, f"no finetune job in squeue: {_squeue()}"
        run(["timeout", "10", "scancel", *finetune])
        assert proc.wait(timeout=1500) == 0, (tmp_path / "snakemake.log").read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "snakemake.log").read_text()
    assert "finetune" in text and ("CANCELLED" in text or "Error in rule finetune" in text), text[-3000:]
    ft = json.loads((results / name / "finetune" / "metrics.json").read_text())
    assert ft["train/resumed"] == 1
    # Same seed, same data, resumed mid-way: the same scores as the uninterrupted local run.
    rows = (results / name / "report.csv").read_text().splitlines()
    local = (tiny_local / "tiny" / "report.csv").read_text().splitlines()
    assert rows[0] == local[0] and len(rows) == 1 + len(FEW_BENCHMARKS)
    assert rows[1:] == [r for r in local[1:] if r.split(",")[0] in FEW_BENCHMARKS]
    # The profile keeps the SLURM logs of successful jobs too.
    assert list((work / ".snakemake" / "slurm_logs" / "rule_report").rglob("*.log"))
    # The rerun triggers hold from the copy: nothing left to do.
    dry = _in(work, ["snakemake", "-n", "--cores", "1", *config], env, timeout=300)
    assert "Nothing to be done" in dry.stdout, dry.stdout[-3000:]
