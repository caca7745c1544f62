"""Shared helpers for the benchmark tests: the eval-kit samples and tiny eval roots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "eval_samples"  # ../shared beside the clone
#: Tests on the real eval-kit slices: skipped where the samples are absent, failed under CI=true
#: (the ``eval_samples`` fixture in conftest.py).
needs_samples = pytest.mark.usefixtures("eval_samples")


def copy_sample(eval_root: Path, rel: str) -> Path:
    """Copy ``SAMPLES/rel`` (file or folder) to ``eval_root/rel``."""
    src, dst = SAMPLES / rel, eval_root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def answer(qid, text: str, prompt: str = "", **extra) -> dict:
    """An answer row in the official format."""
    return {"question_id": qid, "prompt": prompt, "text": text, "answer_id": "x", "model_id": "m",
            "metadata": {}, **extra}
