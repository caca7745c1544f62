"""Atomic writes: a failure leaves the previous file (or nothing), never a partial one."""

from __future__ import annotations

import os

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


WRITE_EVERY_KIND = """
import os, sys
from pathlib import Path
from llava_core.data.index import write_training_index
from llava_core.io import apply_umask, atomic_dir, atomic_write, write_json
out = Path(sys.argv[1])
write_json(out / "metrics.json", {"a": 1})
with atomic_write(out / "report.csv") as fh:
    fh.write("x\\n")
with atomic_dir(out / "model") as tmp:
    (tmp / "weights.bin").write_bytes(b"0")
    os.chmod(tmp / "weights.bin", 0o600)  # as transformers writes model.safetensors
    apply_umask(tmp)
write_training_index([{"id": "1", "conversations": []}], out / "finetune.arrow")
"""


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask):
    """Atomic writes go through a temporary file (mkstemp: 0600) or folder (mkdtemp: 0700); the
    renamed output must still have the mode open()/mkdir() give under the user's umask, or group
    members on a shared file system could not read reports and checkpoints."""
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([sys.executable, "-c", WRITE_EVERY_KIND, str(out)], check=True,
                   preexec_fn=lambda: os.umask(umask))
    paths = [p for p in out.rglob("*")]
    assert {p.name for p in paths} >= {"metrics.json", "report.csv", "model", "weights.bin", "finetune.arrow"}
    for p in paths:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert p.stat().st_mode & 0o777 == want, (p, oct(p.stat().st_mode & 0o777), oct(want))
