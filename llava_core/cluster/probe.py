"""The script a ``llava-core cluster check`` job runs on a compute node (standard library only).

It is copied next to the job's output and run with the submit host's Python interpreter, so it
still runs (and says what is wrong) when the node's ``llava_core`` is missing or different. It
prints one line, ``PROBE-JSON {...}``: the node's name, whether it could write the token file
under the results folder, the ``llava_core`` it imports (version, folder, a digest of its
source) and the ``llava-core`` on its PATH, and for each MLflow tracking URI whether it is
reachable from here (``<uri>/health`` of a server; the folder of a sqlite or file store writable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

PREFIX = "PROBE-JSON "


def source_digest(package_dir: str | os.PathLike) -> str:
    """A digest of a package's ``.py`` files (paths and contents): the same code, or not."""
    root = Path(package_dir)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _writable(folder: Path) -> tuple[bool, str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        test = folder / f".llava-core-probe-{socket.gethostname()}-{os.getpid()}"
        test.write_text("ok")
        test.unlink()
        return True, f"{folder} is writable"
    except OSError as e:
        return False, f"cannot write in {folder}: {e}"


def probe_tracking_uri(uri: str, timeout: float = 5.0) -> dict:
    """``{"ok": True/False/None, "detail": ...}`` for one MLflow tracking URI (None: not probed)."""
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the user's MLflow URI
                body = resp.read(100).decode(errors="replace").strip()
                return {"ok": resp.status == 200, "detail": f"GET {url}: HTTP {resp.status} {body[:40]}"}
        except Exception as e:  # any failure to reach it is the finding
            return {"ok": False, "detail": f"GET {url}: {e}"}
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        ok, detail = _writable(db.parent)
        if ok and db.exists() and not os.access(db, os.W_OK):
            return {"ok": False, "detail": f"{db} exists but is not writable"}
        return {"ok": ok, "detail": detail}
    if uri.startswith("file:") or "://" not in uri:
        folder = Path(uri[len("file://"):] if uri.startswith("file://") else uri.removeprefix("file:"))
        ok, detail = _writable(folder)
        return {"ok": ok, "detail": detail}
    return {"ok": None, "detail": f"not probed (scheme {uri.split(':', 1)[0]})"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--token", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--mlflow", action="append", default=[], help="a tracking URI to probe (repeatable)")
    args = p.parse_args(argv)
    out: dict = {"host": socket.gethostname(), "python": sys.executable,
                 "llava_core_cli": shutil.which("llava-core")}
    try:
        Path(args.token_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.token_file).write_text(args.token)
        out["token"] = "written"
    except OSError as e:
        out["token_error"] = str(e)
    try:
        import llava_core

        folder = Path(llava_core.__file__).resolve().parent
        out.update(version=getattr(llava_core, "__version__", None), package=str(folder),
                   digest=source_digest(folder))
    except Exception as e:  # the finding: the node's Python cannot import the package
        out["import_error"] = f"{type(e).__name__}: {e}"
    out["mlflow"] = {uri: probe_tracking_uri(uri) for uri in args.mlflow}
    print(PREFIX + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
