"""Shared fixtures: the repository root and a helper to run commands from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
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


#: Session fixtures that take minutes to build, and the xdist group of the tests that use them.
SHARED_FIXTURES = {"tiny_local": "tiny-dag", "sweep_run": "sweep", "tiny_data": "train-data"}
#: Modules that submit jobs to the one-node SLURM cluster: one worker runs them all (with the tiny
#: DAG, which the SLURM DAG test compares with), so no job waits behind another test's on its 2 CPUs.
SLURM_MODULES = ("tests/test_cluster.py", "tests/test_slurm.py")


def pytest_itemcollected(item) -> None:
    """Groups for ``pytest -n N --dist loadgroup`` (scripts/test.sh): each xdist worker builds its own
    session fixtures, so the tests of one costly fixture (the tiny DAG, the sweep, the training
    data) run on one worker and it is built once; the SLURM tests join the tiny DAG's; every other
    test stays with its module, whose module fixtures are then built once too. Marked as each item
    is collected: xdist reads the marks in its own pytest_collection_modifyitems. Without xdist the
    marks do nothing."""
    module = item.nodeid.split("::", 1)[0]
    group = SHARED_FIXTURES["tiny_local"] if module in SLURM_MODULES else next(
        (g for f, g in SHARED_FIXTURES.items() if f in getattr(item, "fixturenames", ())), module)
    item.add_marker(pytest.mark.xdist_group(group))


def pytest_xdist_node_collection_finished(node, ids) -> None:
    """Under ``--dist loadgroup`` xdist appends each test's group to the ids a worker collected; if it
    has not (pytest-xdist#1386, pytest 9.2), the groups would be silently ignored and every worker
    would build every costly fixture: stop with the fix instead."""
    if node.config.getvalue("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit("pytest-xdist did not apply the test groups (--dist loadgroup, pytest-xdist#1386): install "
                    "the versions the test extra of pyproject.toml pins (pip install -e '.[test]')", returncode=3)


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
    (test_workflow checks them against the plan's code digests). ``LLAVA_CORE_TINY_RESULTS=<dir>``
    reuses a copy of a finished run instead, to iterate on the tests that only read it."""
    import shutil

    if os.environ.get("LLAVA_CORE_TINY_RESULTS"):
        results = tmp_path_factory.mktemp("tiny-results") / "copy"
        shutil.copytree(os.environ["LLAVA_CORE_TINY_RESULTS"], results, symlinks=True)
        return results
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


# A small world and a few steps for the variant tests: what is under test is sharing and naming.
SMALL_WORLD = ["data.synthetic.n_pretrain=200", "data.synthetic.n_finetune=400", "data.synthetic.n_eval=20",
               "pretrain.max_steps=3", "finetune.max_steps=6"]
SWEEP = "finetune.learning_rate=1e-3,2e-3 finetune.seed=1,2"
ALL_BENCHMARKS = ("vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn",
                  "seed_bench", "llava_bench", "mm_vet")
#: Where what is under test is sharing, naming or layout (not the benchmarks, which the tiny DAG
#: test covers), four formats stand for the 12: exact match, yes/no, lettered choice, judged.
FEW_BENCHMARKS = ("gqa", "pope", "mmbench", "llava_bench")
ONLY_FEW = [f"~evaluation.benchmarks.{b}" for b in ALL_BENCHMARKS if b not in FEW_BENCHMARKS]


def planned_jobs(stdout: str) -> Counter:
    """Job counts from the 'Job stats' table of a dry run (empty when nothing is to be done)."""
    import re

    counts: Counter = Counter()
    if "Nothing to be done" in stdout:
        return counts
    for line in stdout.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture(scope="session")
def sweep_run(tmp_path_factory) -> dict:
    """Configuration A (stage-2 learning rate 1e-3, stage-2 seed 1) on a small world, then B (2e-3,
    seed 1), then A again, then the 2 x 2 sweep of learning rate x stage-2 seed, in one results
    folder. Returns the folder, each step's planned jobs (from a dry run just before it), the files
    of A after its first run and after the third, and the sweep's plan."""
    import hashlib

    results = tmp_path_factory.mktemp("sweep-results")
    a = [*SMALL_WORLD, *ONLY_FEW, "finetune.learning_rate=1e-3", "finetune.seed=1"]
    b = [*SMALL_WORLD, *ONLY_FEW, "finetune.learning_rate=2e-3", "finetune.seed=1"]
    steps: dict[str, dict] = {}

    def step(name: str, overrides: list[str], sweep: str | None = None) -> None:
        config = [f"results={results}", "overrides=" + " ".join(overrides), *([f"sweep={sweep}"] if sweep else [])]
        steps[name] = dict(planned_jobs(run(["snakemake", "-n", "--cores", "1", "--config", *config]).stdout))
        run(["snakemake", "--cores", "2", "--config", *config], timeout=1500)

    def plan_of(overrides: list[str], sweep: str | None = None) -> dict:
        return json.loads(run(["llava-core", "plan", "tiny", "--results", str(results),
                               *[x for o in overrides for x in ("-o", o)], *(["--sweep", sweep] if sweep else [])]).stdout)

    def files_of(plan: dict) -> dict[str, str]:
        (name,) = plan["variants"]
        folders = [Path(plan["stages"][job]["dir"]) for key, job in plan["variants"][name]["stages"].items()
                   if key in ("finetune", "report") or key.startswith("eval/")]
        out = {}
        for d in folders:
            for root, _dirs, names in os.walk(d, followlinks=False):  # not into the report's links
                for n in names:
                    f = Path(root) / n
                    if ".mlflow" not in f.parts and not f.is_symlink():
                        out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        return out

    step("A", a)
    plan_a = plan_of(a)
    files_a = files_of(plan_a)
    step("B", b)
    step("A again", a)
    files_a_again = files_of(plan_a)
    step("sweep", [*SMALL_WORLD, *ONLY_FEW], SWEEP)
    return {"results": results, "steps": steps, "files_a": files_a, "files_a_again": files_a_again,
            "plan_a": plan_a, "plan_b": plan_of(b), "plan": plan_of([*SMALL_WORLD, *ONLY_FEW], SWEEP)}
