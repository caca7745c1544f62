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
