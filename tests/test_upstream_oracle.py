"""The authors' own code as the oracle: upstream's ``preprocess_multimodal`` + ``preprocess_v1`` /
``preprocess_plain`` and ``tokenizer_image_token`` (PyPI ``llava-torch==1.2.2.post1``, in its own
virtual environment with the transformers/tokenizers it was released with) on LLaMA's real
vocabulary, against this package's ids and labels, for both tokenizer-folder forms
(``scripts/compare_with_upstream.py``): hand-written and tiny-world records in ``vicuna_v1`` and
``plain``, and every benchmark's prompt."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, run

ORACLE = ROOT / ".cache" / "llava-torch-oracle"
# llava-torch pins torch 2.0.1, which has no wheel here: the local CPU torch instead (no CUDA code runs).
PACKAGES = ["transformers==4.37.2", "tokenizers==0.15.1", "sentencepiece", "accelerate==0.26.1", "einops",
            "shortuuid", "pillow", "numpy"]


def oracle_python() -> str:
    """The oracle environment's interpreter, created once (about 2 minutes) and kept under .cache/."""
    python = ORACLE / "bin" / "python"
    marker = ORACLE / "ready"
    if not marker.exists():
        run([sys.executable, "-m", "venv", "--clear", str(ORACLE)])
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run([*pip, "torch==2.13.0"], timeout=900)
        run([*pip, "--no-deps", "llava-torch==1.2.2.post1"], timeout=900)
        run([*pip, *PACKAGES], timeout=900)
        marker.write_text("ok")
    return str(python)


def test_streams_equal_the_authors_code(tmp_path):
    script = "scripts/compare_with_upstream.py"
    run([sys.executable, script, "cases", "--out", str(tmp_path)])
    run([oracle_python(), script, "upstream", "--out", str(tmp_path)], timeout=900)
    proc = subprocess.run([sys.executable, script, "compare", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("UPSTREAM_COMPARE ")), None)
    assert line is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(line.removeprefix("UPSTREAM_COMPARE "))
    cases = json.loads((tmp_path / "cases.json").read_text())
    n = sum(map(len, cases["records"].values())) + len(cases["prompts"])
    assert n > 400 and len(cases["prompts"]) > 100
    for form in ("legacy", "nonlegacy"):
        assert summary[form] == {"checked": n, "mismatched": [], "n_mismatched": 0}, form
    assert proc.returncode == 0
    # upstream's labels are real: each text-only and image record supervises something (no silent
    # "tokenization mismatch" zeroing on either side)
    upstream = json.loads((tmp_path / "upstream.json").read_text())
    assert all(any(t != -100 for t in row["labels"]) for rows in upstream["records"].values() for row in rows)
