"""What is on disk under a results folder, and what the variants asked for use of it.

``llava-core runs`` lists each variant, the stage folders it uses (shared ones once per variant),
their sizes and whether each is complete. ``llava-core gc`` lists the stage and variant folders no
listed variant uses, and deletes them only with ``--yes``: never a folder a listed variant (or a
``--keep`` one) uses, and nothing at all while Snakemake holds the working folder's lock (a running
job's partial outputs look unused).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_ID = re.compile(r"^[0-9a-f]{12}$")


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def status(entry: dict) -> str:
    """``complete`` (every declared output there), ``partial`` (its folder, not all outputs) or
    ``missing``."""
    outs = [Path(p) for p in entry["outputs"].values()]
    if all(p.exists() for p in outs):
        return "complete"
    return "partial" if Path(entry["dir"]).exists() else "missing"


def runs_table(plan: dict) -> list[dict]:
    """One row per (variant, stage): the stage's folder, status, size and how many variants share it."""
    sizes: dict[str, int] = {}
    rows = []
    for name, variant in plan["variants"].items():
        for key, job in variant["stages"].items():
            entry = plan["stages"][job]
            if entry["kind"] == "synthesize":
                continue  # the mirror lives in the dataset folder, counted with the download
            d = entry["dir"]
            if d not in sizes:
                sizes[d] = folder_size(Path(d)) if Path(d).exists() else 0
            if entry["kind"] in ("download", "report"):  # the dataset's and the variant's own files only
                sizes[d] = _own_size(Path(d))
            rows.append({"variant": name, "group": variant["group"], "stage": key, "dir": d, "status": status(entry),
                         "bytes": sizes[d], "shared_by": len(entry["users"])})
    return rows


def _own_size(folder: Path) -> int:
    """A folder's size without the stage folders nested in it (a dataset folder holds the filtered
    and instruct sets, a variant folder links)."""
    if not folder.exists():
        return 0
    total = 0
    for child in folder.iterdir():
        if child.is_symlink():
            continue
        if child.name in ("filtered", "instruct") and child.is_dir():
            total += sum(folder_size(c) for c in child.iterdir() if not _ID.match(c.name))
        else:
            total += folder_size(child) if child.is_dir() else child.lstat().st_size
    return total


@dataclass
class Candidate:
    """A folder under the results folder that holds one stage's (or one variant's) outputs."""

    path: Path
    kind: str


def stage_folders(results: Path) -> list[Candidate]:
    """Every stage and variant folder under ``results`` (by the layout of ``plan/layout.py``)."""
    out: list[Candidate] = []
    stages = results / "stages"
    for kind in ("pretrain", "finetune", "import"):
        out += [Candidate(p, kind) for p in sorted((stages / kind).glob("*")) if _ID.match(p.name)]
    for bench in sorted((stages / "eval").glob("*")):
        out += [Candidate(p, "evaluate") for p in sorted(bench.glob("*")) if _ID.match(p.name)]
    for data in sorted((results / "data").glob("*")):
        if not data.is_dir():
            continue
        for sub, kind in (("filtered", "filter"), ("instruct", "instruct")):
            out += [Candidate(p, kind) for p in sorted((data / sub).glob("*")) if _ID.match(p.name)]
        if (data / "download.json").exists() or (data / "download.lock.json").exists() or (data / "mirror").exists():
            out.append(Candidate(data, "download"))
    for variant in sorted(results.iterdir()) if results.is_dir() else []:
        if (variant / "report_config").is_dir() or (variant / "mlflow_parent.json").is_file():
            out.append(Candidate(variant, "report"))
    return out


def used_folders(plan: dict, results: Path, keep: list[str]) -> set[Path]:
    """The folders the planned variants use, and those the ``keep`` variants' reports listed
    (``<results>/<variant>/stages.json``)."""
    used = {Path(e["dir"]).resolve() for e in plan["stages"].values()}
    for name in keep:
        listed = results / name / "stages.json"
        if not listed.is_file():
            raise FileNotFoundError(f"{listed}: --keep {name}: no such variant report (its stages.json lists "
                                    "the stages it uses; run its report first, or name a variant of the config)")
        used |= {(results / s["dir"]).resolve() for s in json.loads(listed.read_text()).values()}
        used.add((results / name).resolve())
    return used


def snakemake_locked(workdir: Path) -> bool:
    """Whether a Snakemake run holds the working folder's lock (``.snakemake/locks/``)."""
    locks = Path(workdir) / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def collect(plan: dict, results: Path, keep: list[str]) -> list[tuple[Candidate, int]]:
    """The unused folders (and their sizes), biggest first; a folder inside a used one is used."""
    used = used_folders(plan, results, keep)
    found = []
    for cand in stage_folders(results):
        path = cand.path.resolve()
        if path in used or any(u in path.parents for u in used if cand.kind != "download"):
            continue
        if cand.kind == "download" and any(path in u.parents for u in used):
            continue  # a dataset folder holding a used filtered or instruct set
        found.append((cand, _own_size(cand.path) if cand.kind in ("download", "report") else folder_size(cand.path)))
    return sorted(found, key=lambda item: -item[1])


def delete(candidates: list[tuple[Candidate, int]]) -> int:
    """Remove the folders; return the bytes freed."""
    freed = 0
    for cand, size in candidates:
        shutil.rmtree(cand.path, ignore_errors=True)
        freed += size
    return freed
