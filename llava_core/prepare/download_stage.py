"""The download stage of a dataset, as ``llava-core download`` runs it.

``run_download`` fetches every declared source (verified against the lock), crawls OCR-VQA's
images where the dataset has them, and links the pieces into the layout the consumers expect;
it reports to the stage's MLflow run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from llava_core.config.compose import to_dict
from llava_core.io import write_json

log = logging.getLogger(__name__)
LOCK = "download.lock.json"


def needed_ocrvqa_images(cfg: DictConfig, data_dir: Path) -> set[str]:
    """File names under ``data.ocr_vqa.images`` that the stage-2 records reference."""
    import os
    import posixpath

    from llava_core.data.formats import iter_llava_records

    # Compare path strings, not resolved paths: 665K records, no file system calls.
    folder = posixpath.normpath(os.path.relpath(data_dir / cfg.data.ocr_vqa.images, data_dir / cfg.data.finetune_images))
    needed = set()
    for _, rec in iter_llava_records(data_dir / cfg.data.finetune_records):
        if isinstance(rec, dict) and "image" in rec:
            head, name = posixpath.split(posixpath.normpath(rec["image"]))
            if head == folder:
                needed.add(name)
    return needed


def fetch_declared(cfg: DictConfig, sources, root: Path, lock_path: Path, *, workers: int,
                   mirror: str | None = None, base_url: str | None = None, links: dict | None = None,
                   progress: bool = True) -> dict:
    """Fetch declared ``sources`` (a config list: data.sources, data.instruct.sources,
    released.sources) into ``root``, verified against ``lock_path``; the mirror and base URL
    default to the dataset's. Returns the lock."""
    from llava_core.prepare.download import download_sources
    from llava_core.prepare.sources import sources_from_config

    return download_sources(sources_from_config(to_dict(sources)), root, lock_path, workers=workers,
                            mirror=mirror or cfg.data.mirror, base_url=base_url or cfg.data.base_url,
                            links=links or {}, progress=progress)


def run_download(cfg: DictConfig, data_dir: Path, run, *, workers: int, mirror: str | None = None,
                 base_url: str | None = None, progress: bool = True) -> dict:
    """Fetch, verify, crawl and link a dataset into ``data_dir``; return a summary of it."""
    lock = fetch_declared(cfg, cfg.data.sources, data_dir, data_dir / LOCK, workers=workers, mirror=mirror,
                          base_url=base_url, links=to_dict(cfg.data.links), progress=progress)
    summary: dict[str, Any] = {"sources": lock["sources"]}
    run.log_metrics({"data/sources": len(lock["sources"]),
                     "data/bytes": sum(e.get("size") or 0 for e in lock["sources"].values())})
    run.log_artifact(data_dir / LOCK)
    if cfg.data.ocr_vqa is not None:
        summary["ocr_vqa"] = crawl_ocrvqa(cfg, data_dir, run, workers=workers, progress=progress)
    return summary


def crawl_ocrvqa(cfg: DictConfig, data_dir: Path, run, *, workers: int, progress: bool = True) -> dict:
    """Crawl the OCR-VQA covers the stage-2 records need; failures are listed, not fatal."""
    from llava_core.prepare.crawl import crawl_images, ocrvqa_items

    oc = cfg.data.ocr_vqa
    needed = needed_ocrvqa_images(cfg, data_dir) if oc.only_needed else None
    items = ocrvqa_items(data_dir / oc.dataset_json, needed, mirror=oc.mirror)
    report_path = data_dir / "ocr_vqa.crawl_report.json"
    report = crawl_images(items, data_dir / oc.images, data_dir / "ocr_vqa.crawl.lock.json", report_path,
                          workers=max(workers, oc.workers), progress=progress)
    unknown = sorted(needed - {name for name, _ in items}) if needed is not None else []
    if unknown:  # referenced by the records but absent from dataset.json: no URL to try
        report["not_in_dataset_json"] = unknown
        write_json(report_path, report)
    if report["failed_count"] or unknown:
        log.warning("OCR-VQA: %d of %d images could not be fetched and %d have no URL; their records will be "
                    "dropped by the filter (see %s)", report["failed_count"], report["requested"], len(unknown),
                    report_path)
    run.log_metrics({"data/ocr_vqa/requested": report["requested"], "data/ocr_vqa/fetched": report["fetched"],
                     "data/ocr_vqa/failed": report["failed_count"], "data/ocr_vqa/no_url": len(unknown)})
    run.log_artifact(report_path)
    return {k: v for k, v in report.items() if k != "failed"}
