"""Start a training stage on every GPU it asks for: re-execute ``llava-core`` under torchrun.

A stage whose resources ask for more than one GPU or node, started as a plain process (no
``LOCAL_RANK``: not yet under torchrun), runs itself again as the workers of

- ``srun --nodes N --ntasks-per-node 1 ... torchrun --nnodes N --nproc_per_node G --rdzv_backend
  c10d --rdzv_endpoint <first node>:29500 --rdzv_id $SLURM_JOB_ID -m llava_core.cli <args>``
  inside a SLURM allocation of more than one node (one torchrun per node, rendezvous on the
  first node of ``SLURM_JOB_NODELIST``);
- ``torchrun --standalone --nproc_per_node G -m llava_core.cli <args>`` on one node (with or
  without SLURM: one node needs no second job step).

``--no-launch`` turns this off (the workers get it too, besides seeing ``LOCAL_RANK``).

Signals (SLURM preemption, ``--signal=USR1@<s>``, the time limit's SIGTERM): each worker
handles SIGTERM/SIGUSR1 itself (``callbacks.PreemptionCallback``: checkpoint, exit 75), so
torchrun is made to ignore both (``python -m llava_core.train.launch torchrun`` sets SIG_IGN and
runs torchrun with ``--signals-to-handle`` omitting them): a torchrun that handled them would kill
its workers after a short grace period, and one signalled twice (by SLURM and by srun) could
abandon them mid-save. SLURM signals every process of a job step, workers included; a launcher
signalled by hand passes the signal to its local worker processes. When the workers stop for a
signal the launcher exits 75 too.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

RDZV_PORT = 29500
# What torchrun itself handles: SIGTERM and SIGUSR1 are left to the workers (see the docstring).
TORCHRUN_SIGNALS = "SIGINT,SIGHUP,SIGQUIT"
WORKER_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    nodelist = nodelist.strip()
    depth, end = 0, len(nodelist)
    for i, ch in enumerate(nodelist):  # the first entry ends at a comma outside brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            end = i
            break
    entry = nodelist[:end]
    # Each bracket group becomes its first member: "7-9,12" -> "7", keeping zero padding.
    host = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split(",")[0].split("-")[0], entry)
    if not host:
        raise ValueError(f"cannot read a host from SLURM_JOB_NODELIST={nodelist!r}")
    return host


def launch_command(argv: Sequence[str], gpus: int, nodes: int, env: Mapping[str, str],
                   python: str | None = None) -> list[str] | None:
    """The command that re-runs ``llava-core <argv>`` as torchrun workers, or None to run in-process.

    ``gpus`` is per node, ``nodes`` the config's node count (inside SLURM, ``SLURM_NNODES`` wins:
    it is what was granted). None when already a worker (``LOCAL_RANK`` set) or one process is
    asked for. A multi-node stage outside SLURM is an error: nothing could start the other nodes.
    """
    if env.get("LOCAL_RANK") is not None or "--no-launch" in argv:
        return None
    nproc = max(1, int(gpus))
    in_slurm = bool(env.get("SLURM_JOB_ID"))
    nnodes = int(env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES") or nodes) if in_slurm else int(nodes)
    if nproc == 1 and nnodes <= 1:
        return None
    python = python or sys.executable
    # The shim: torchrun with SIGTERM/SIGUSR1 ignored (inherited across exec), see the docstring.
    torchrun = [python, "-m", "llava_core.train.launch", "torchrun"]
    workers = ["--nproc_per_node", str(nproc), "-m", "llava_core.cli", *argv, "--no-launch"]
    if nnodes <= 1:
        return [*torchrun, "--standalone", "--nnodes", "1", *workers]
    if not in_slurm:
        raise ValueError(f"the stage asks for {nnodes} nodes; multi-node runs are started inside a SLURM "
                         "allocation (srun), or by hand with torchrun on every node and --no-launch")
    host = first_host(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or "")
    port = env.get("LLAVA_CORE_RDZV_PORT") or str(RDZV_PORT)
    srun = ["srun", "--nodes", str(nnodes), "--ntasks-per-node", "1", "--kill-on-bad-exit=1"]
    if env.get("SLURM_STEP_ID") not in (None, "", "batch", "4294967294"):
        srun.append("--overlap")  # already inside a job step (Snakemake's): share its resources
    return [*srun, *torchrun, "--nnodes", str(nnodes), "--rdzv_backend", "c10d",
            "--rdzv_endpoint", f"{host}:{port}", "--rdzv_id", env["SLURM_JOB_ID"], *workers]


def is_main_process(env: Mapping[str, str] | None = None) -> bool:
    """Rank 0, or not distributed at all (torchrun sets ``RANK`` in every worker)."""
    env = os.environ if env is None else env
    return int(env.get("RANK") or 0) == 0


class NullRun:
    """Stands in for the MLflow stage run on ranks other than 0 (one run per stage, not per rank)."""

    run_id = parent_id = None

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def maybe_launch(args, resources, expected: dict[str, str] | None = None) -> int | None:
    """If this stage must run under torchrun, run it there and return its status; else None.

    ``expected``: the stage's declared outputs (``layout.outputs``). The workers' status is then
    checked against them (``distributed.incomplete_outputs``): a failure after the outputs were
    complete (a rank that died at shutdown) counts as success, with a warning; a success with
    outputs missing counts as failure. The completion record is deleted before the workers start,
    so only this run's counts.
    """
    cmd = launch_command(getattr(args, "argv", None) or sys.argv[1:], resources.gpus, resources.nodes, os.environ)
    if cmd is None:
        return None
    from llava_core.exit_codes import PREEMPTED
    from llava_core.train.distributed import COMPLETION_RECORD, incomplete_outputs
    from llava_core.train.runner import PREEMPTED_MARKER

    if expected:
        Path(expected[COMPLETION_RECORD]).unlink(missing_ok=True)
    rc = run_launched(cmd, Path(args.out) / PREEMPTED_MARKER)
    if not expected or rc == PREEMPTED:
        return rc
    missing = incomplete_outputs(expected)
    if rc != 0 and not missing:
        log.warning("the workers exited %d after the stage's outputs were complete (every declared output exists, "
                    "and rank 0's completion record %s was written by this run): a rank died while shutting down; "
                    "the stage counts as finished", rc, expected[COMPLETION_RECORD])
        return 0
    if missing:
        log.error("the stage's outputs are incomplete (%s missing or unfinished)%s", ", ".join(missing),
                  "" if rc else " although every worker exited 0")
        return rc or 1
    return rc


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def run_launched(cmd: list[str], marker: Path | None = None) -> int:
    """Run ``cmd`` (from :func:`launch_command`), passing SIGTERM/SIGUSR1 to the local workers.

    Returns the child's status, except 75 when the workers stopped for a signal (``marker``, the
    runner's ``preempted.json``, was written during this run, or this process was signalled).
    """
    from llava_core.exit_codes import PREEMPTED

    log.info("launching: %s", " ".join(cmd))
    started = time.time()
    got: list[int] = []
    proc = subprocess.Popen(cmd, start_new_session=True)  # our group's signals are not its signals

    def forward(signum, frame):
        got.append(signum)
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(pid, signum)  # torchrun ignores it, the workers checkpoint and stop
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, forward) for sig in WORKER_SIGNALS}
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for safety)
                continue
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)
    preempted = marker is not None and marker.exists() and marker.stat().st_mtime >= started - 1
    if rc != 0 and (preempted or got):
        return PREEMPTED
    return rc


def _torchrun(argv: list[str]) -> None:
    """``python -m llava_core.train.launch torchrun ARGS``: torchrun with the worker signals ignored.

    SIG_IGN is inherited by the workers, which install their own handlers; torchrun (versions with
    ``--signals-to-handle`` read it from ``PET_SIGNALS_TO_HANDLE``) registers handlers for the others only.
    """
    for sig in WORKER_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    os.environ["PET_SIGNALS_TO_HANDLE"] = TORCHRUN_SIGNALS
    from torch.distributed.run import main as torchrun_main

    sys.argv = ["torchrun", *argv]
    torchrun_main()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "torchrun":
        sys.exit("usage: python -m llava_core.train.launch torchrun [torchrun arguments]")
    _torchrun(sys.argv[2:])
