"""The import stage of a released checkpoint, as ``llava-core import`` runs it (issue 13).

``run_import`` fetches the checkpoint's declared files (hub files pinned to a revision, verified
against ``source.lock.json`` like data sources) or takes a local folder, and converts it into
this project's model folder (``original`` or ``llava-hf`` layout), which the evaluation jobs
then read exactly as they read a trained stage-2 model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from llava_core.plan.layout import outputs

log = logging.getLogger(__name__)
LOCK = "source.lock.json"
CHECKPOINT = "checkpoint"  # the folder, under source/, that the fetched files make up


def checkpoint_source(cfg: DictConfig, out_dir: Path, data_dir: Path, *, base_url: str | None = None,
                      workers: int = 4, progress: bool = True) -> tuple[Path, dict]:
    """The checkpoint folder to import, fetched where ``released.sources`` declare it; and the
    lock's entries (empty for a local folder)."""
    from llava_core.model.build import resolve_path
    from llava_core.prepare.download_stage import fetch_declared

    rel = cfg.released
    if rel.folder:
        folder = Path(resolve_path(rel.folder, data_dir))
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: released.folder has no config.json; point it at the checkpoint folder")
        return folder, {}
    source = out_dir / "source"
    lock = fetch_declared(cfg, rel.sources, source, out_dir / LOCK, workers=workers, base_url=base_url,
                          progress=progress)
    folder = source / CHECKPOINT
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json among the fetched files; released.sources must put the "
                                f"checkpoint's files under {CHECKPOINT}/ (dest: {CHECKPOINT}/config.json, ...)")
    return folder, lock["sources"]


def run_import(cfg: DictConfig, data_dir: Path, out_dir: Path, run, *, base_url: str | None = None,
               workers: int = 4, progress: bool = True) -> dict:
    """Fetch and convert ``cfg.released`` into ``<out_dir>/model``; return the summary it writes."""
    from llava_core.io import write_json
    from llava_core.model.build import resolve_path
    from llava_core.model.checkpoints import import_llava_hf, import_original

    rel = cfg.released
    folder, files = checkpoint_source(cfg, out_dir, data_dir, base_url=base_url, workers=workers, progress=progress)
    dest = outputs("import", str(out_dir))
    if rel.lora_base:  # a LoRA release: merged onto its base first, into the original layout
        from llava_core.model.lora_release import merge_lora_release

        folder = merge_lora_release(folder, resolve_path(rel.lora_base, data_dir), out_dir / "merged")
    if rel.layout == "original":
        tower = resolve_path(rel.vision_tower, data_dir) if rel.vision_tower else None
        import_original(folder, dest["model"], vision_tower=tower)
    else:
        import_llava_hf(folder, dest["model"])
    summary = {"layout": rel.layout, "lora_base": rel.lora_base, "checkpoint": str(folder), "model": dest["model"],
               "files": {name: entry.get("sha256") for name, entry in files.items()}}
    write_json(dest["summary"], summary)
    if files:
        run.log_artifact(out_dir / LOCK)
    run.log_metrics({"import/files": len(files)})
    log.info("imported %s (%s layout) into %s", folder, rel.layout, dest["model"])
    return summary
