"""Atomic writes: a failure leaves the previous file (or nothing), never a partial one."""

from __future__ import annotations

import pytest

from llava_core.io import FormatError, atomic_dir, atomic_write, read_jsonl, write_json


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "scores.json"
    write_json(target, {"score": 1})
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write('{"score": 2, "partial')
        raise RuntimeError("killed")
    assert target.read_text().strip() == '{\n  "score": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_atomic_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed while saving weights")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (target / "config.json").exists()


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question_id": 1}\n\n{"question_id": 2,\n')
    with pytest.raises(FormatError, match=r"q\.jsonl:3: invalid JSON"):
        read_jsonl(path)
