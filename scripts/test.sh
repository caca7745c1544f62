#!/usr/bin/env bash
# Install the project with its test tools and run every check: ruff, Snakemake's linter and
# the test suite (unit tests, scorer tests on the eval-kit samples, and the tiny DAG end to end).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned CPU wheel first: an unpinned torch would pull a CUDA build of several GB.
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test]"

ruff check llava_core tests
snakemake --lint
# Two workers by default (CI has 2 cores): much of a DAG test is process start-up and SLURM polling,
# which the other worker fills. Tests that share a costly fixture stay on one worker (tests/conftest.py).
python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadgroup --durations=25 "$@"
