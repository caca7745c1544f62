"""Submit one batch job and wait for it, with a deadline.

The job's output file is watched (the fastest sign that it ran: ``sbatch --wait`` polls slowly)
and ``scontrol show job`` is asked about once a second for its state, so a job that fails, is
cancelled or never leaves the queue is reported as such. A job still queued or running at the
deadline is cancelled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llava_core.cluster.detect import COMMAND_TIMEOUT_S, Runner, parse_key_values, run_command

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
            "PREEMPTED", "SPECIAL_EXIT", "REVOKED"}
OUTPUT_GRACE_S = 8.0  # a finished job's output may take a moment to show up over NFS


@dataclass
class JobResult:
    """How a submitted job went."""

    job_id: str | None
    state: str  # a SLURM state, SUBMIT_FAILED, or UNKNOWN
    exit_code: str = ""
    reason: str = ""
    node: str = ""
    output: str | None = None  # the output file's text, if visible here
    seconds: float = 0.0  # submission to end of waiting
    error: str = ""  # sbatch's message when the submission failed
    timed_out: bool = False
    submitted_at: float = 0.0  # time.monotonic() at submission

    @property
    def ran(self) -> bool:
        return self.output is not None


def _job_info(runner: Runner, job_id: str) -> dict[str, str]:
    res = runner(["scontrol", "show", "job", "-o", job_id], COMMAND_TIMEOUT_S)
    if res.ok and res.stdout.strip():
        return parse_key_values(res.stdout.splitlines()[0])
    # gone from slurmctld's memory (MinJobAge passed): ask the accounting database
    res = runner(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode,NodeList,Reason"], COMMAND_TIMEOUT_S)
    if res.ok and res.stdout.strip():
        fields = (res.stdout.splitlines()[0].split("|") + ["", "", "", ""])[:4]
        return {"JobState": fields[0].split()[0] if fields[0] else "", "ExitCode": fields[1], "NodeList": fields[2],
                "Reason": fields[3]}
    return {}


def submit(script: Path, output: Path, sbatch_args: list[str], runner: Runner = run_command,
           workdir: Path | None = None) -> JobResult:
    """Submit ``script``: a PENDING result with its job id, or SUBMIT_FAILED with sbatch's message."""
    cmd = ["sbatch", "--parsable", "--job-name", "llava-core-check", "--output", str(output),
           *(["--chdir", str(workdir)] if workdir else []), *sbatch_args, str(script)]
    t0 = time.monotonic()
    res = runner(cmd, max(COMMAND_TIMEOUT_S, 15.0))
    if not res.ok:
        return JobResult(None, "SUBMIT_FAILED", error=res.why(), seconds=time.monotonic() - t0)
    return JobResult(res.stdout.strip().split(";")[0], "PENDING", submitted_at=t0)


def wait(result: JobResult, output: Path, timeout: float, done_marker: str, runner: Runner = run_command,
         poll_s: float = 0.3) -> JobResult:
    """Wait until ``done_marker`` appears in ``output``, the job ends, or ``timeout`` seconds have
    passed since submission (then cancel it). Updates and returns ``result``."""
    if result.job_id is None:
        return result
    job_id, t0 = result.job_id, result.submitted_at
    deadline = t0 + timeout
    next_ask = 0.0
    ended_at: float | None = None
    while True:
        now = time.monotonic()
        if output.is_file():
            text = output.read_text(errors="replace")
            if done_marker in text:
                result.output = text
                break
        if now >= next_ask:
            info = _job_info(runner, job_id)
            if info:
                result.state = info.get("JobState", result.state)
                result.reason = info.get("Reason", "")
                result.exit_code = info.get("ExitCode", "")
                node = info.get("NodeList", "")
                result.node = "" if node in ("", "(null)", "None assigned") else node
            elif ended_at is None:
                result.state = "UNKNOWN"
            if (result.state in TERMINAL or result.state == "UNKNOWN") and ended_at is None:
                ended_at = now
            next_ask = now + 1.0
        if ended_at is not None and now - ended_at > (1.0 if output.is_file() else OUTPUT_GRACE_S):
            if output.is_file():
                result.output = output.read_text(errors="replace")
            break
        if now >= deadline:
            result.timed_out = True
            runner(["scancel", job_id], COMMAND_TIMEOUT_S)
            if output.is_file():
                result.output = output.read_text(errors="replace")
            break
        time.sleep(poll_s)
    if result.output is not None and done_marker in result.output and result.state not in TERMINAL:
        result.state = "COMPLETED"
    result.seconds = time.monotonic() - t0
    return result
