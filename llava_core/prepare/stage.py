"""The download and filter stages of a dataset, as the ``llava-core`` commands run them.

``run_download`` fetches every declared source (verified against the lock), crawls OCR-VQA's
images where the dataset has them, and links the pieces into the layout the consumers expect.
``run_filter`` turns the raw records into the training sets and a manifest of what was kept and
dropped (with, per set, how many records each truncation rule would cut), optionally counting or dropping images shared with the evaluation sets and balancing
captions by noun phrase (LLaVA-1.0's CC3M recipe). Both report to the stage's MLflow run.
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
BALANCE_DROP = "not_selected_by_balance"  # noun-phrase balancing left the caption out


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


def run_download(cfg: DictConfig, data_dir: Path, run, *, workers: int, mirror: str | None = None,
                 base_url: str | None = None, progress: bool = True) -> dict:
    """Fetch, verify, crawl and link a dataset into ``data_dir``; return a summary of it."""
    from llava_core.prepare.download import download_sources
    from llava_core.prepare.sources import sources_from_config

    mirror = mirror or cfg.data.mirror
    base_url = base_url or cfg.data.base_url
    lock = download_sources(sources_from_config(to_dict(cfg.data.sources)), data_dir, data_dir / LOCK,
                            workers=workers, mirror=mirror, base_url=base_url, links=to_dict(cfg.data.links),
                            progress=progress)
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


def eval_overlap_index(cfg: DictConfig, data_dir: Path, workers: int, progress: bool = True):
    """Fingerprints of every image the configured benchmarks ask about (not whole folders: GQA's
    one image folder holds training and test-dev images alike)."""
    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.prepare.overlap import OverlapIndex, fingerprint_images

    eval_root = data_dir / cfg.data.eval_root
    paths: dict[str, None] = {}
    for name in cfg.evaluation.benchmarks:
        for q in get_benchmark(name).load_questions(eval_root):
            if q.image:
                paths[q.image] = None
    index = OverlapIndex(max_distance=cfg.data.filter.overlap_max_distance)
    for _, fp in fingerprint_images(list(paths), workers=workers, progress=progress):
        if fp is not None:
            index.add(*fp)
    log.info("eval overlap index: %d images from %d benchmarks", len(index), len(cfg.evaluation.benchmarks))
    return index


def run_filter(cfg: DictConfig, data_dir: Path, run, *, workers: int, progress: bool = True,
               extractor=None) -> dict:
    """Filter the pretraining and instruction records into ``<data_dir>/filtered``; return manifests.

    ``extractor`` is the noun-phrase extractor of the balancing step (spaCy's noun chunks unless
    given: tests pass a small one, since no spaCy model can be downloaded there).
    """
    from llava_core.io import sha256_file
    from llava_core.prepare.filter import filter_records, write_manifest

    f = cfg.data.filter
    out = data_dir / "filtered"
    overlap = eval_overlap_index(cfg, data_dir, workers, progress).match if f.eval_overlap != "off" else None
    manifests = {}
    for part, records, images in (("pretrain", cfg.data.pretrain_records, cfg.data.pretrain_images),
                                  ("finetune", cfg.data.finetune_records, cfg.data.finetune_images)):
        m = filter_records(data_dir / records, data_dir / images, out / f"{part}.json", workers=workers,
                           dedupe=f.dedupe, check_images=f.check_images, eval_overlap=overlap,
                           overlap_mode=f.eval_overlap, progress=progress)
        if part == "pretrain" and f.balance.enabled:
            m["balance"] = balance_set(out / "pretrain.json", f.balance, extractor)
            not_selected = m["kept"] - m["balance"]["n_selected"]
            m["kept"] = m["balance"]["n_selected"]
            m["dropped"] += not_selected
            m["reasons"] = dict(sorted({**m["reasons"], BALANCE_DROP: not_selected}.items()))
            m["output_sha256"] = sha256_file(out / "pretrain.json")
        m["lengths"] = count_lengths(cfg, data_dir, part, out / f"{part}.json", workers=workers, progress=progress)
        manifests[part] = m
        run.log_metrics({f"data/{part}/records": m["records"], f"data/{part}/kept": m["kept"],
                         f"data/{part}/dropped": m["dropped"],
                         f"data/{part}/cut_by_text_rule": m["lengths"]["cut_by_text_rule"],
                         f"data/{part}/cut_by_expanded_rule": m["lengths"]["cut_by_expanded_rule"],
                         **{f"data/{part}/dropped/{k}": v for k, v in m["reasons"].items()},
                         **{f"data/{part}/eval_overlap/{k}": v for k, v in m["eval_overlap"].items() if k != "mode"}})
    for part, m in manifests.items():  # the training sets, as MLflow dataset inputs of this stage
        run.log_dataset(f"{cfg.data.name}/{part}", m["output_sha256"], str((out / f"{part}.json").resolve()),
                        "training", {"records": m["records"], "kept": m["kept"], "dropped": m["dropped"],
                                     **m["reasons"]})
    write_manifest(out / "manifest.json", manifests)
    run.log_artifact(out / "manifest.json")
    for part in manifests:
        run.log_artifact(out / f"{part}.dropped.jsonl")
    return manifests


def count_lengths(cfg: DictConfig, data_dir: Path, part: str, records: Path, *, workers: int,
                  progress: bool = True) -> dict:
    """How many filtered ``part`` records each truncation rule would cut, with the model's tokenizer."""
    from llava_core.model.build import num_image_tokens, resolve_path
    from llava_core.prepare.lengths import count_truncation

    stats = count_truncation(records, tokenizer_path=resolve_path(cfg.model.llm, data_dir),
                             template=cfg[part].template, max_length=cfg.model.model_max_length,
                             num_image_tokens=num_image_tokens(cfg.model), workers=workers, progress=progress)
    log.info("%s: %d of %d records are longer than %d tokens by the text rule, %d by the expanded rule "
             "(truncation=%s is used)", part, stats["cut_by_text_rule"], stats["records"], stats["max_length"],
             stats["cut_by_expanded_rule"], cfg[part].truncation)
    if stats["unencodable"]:
        log.warning("%s: %d records cannot be encoded with template %s, e.g. %s", part, stats["unencodable"],
                    stats["template"], stats["examples"]["unencodable"][:3])
    return stats


def balance_set(path: Path, settings, extractor=None) -> dict:
    """Keep the noun-phrase-balanced subset of the records in ``path`` (rewritten atomically);
    list the others in its ``.dropped.jsonl`` (by their number in ``path``); return the stats."""
    import json

    from llava_core.data.formats import read_llava_records, write_llava_records
    from llava_core.io import atomic_write
    from llava_core.prepare.balance import balance_by_noun_phrases, record_caption, spacy_noun_phrases

    extract = extractor or spacy_noun_phrases(settings.spacy_model)
    records = read_llava_records(path)
    result = balance_by_noun_phrases([record_caption(r) for r in records], extract, min_count=settings.min_count,
                                     max_per_phrase=settings.max_per_phrase, seed=settings.seed)
    selected = set(result.selected)
    dropped_path = path.with_name(path.stem + ".dropped.jsonl")
    previous = dropped_path.read_text() if dropped_path.exists() else ""
    with atomic_write(dropped_path) as fh:
        fh.write(previous)
        for i, rec in enumerate(records):
            if i not in selected:
                fh.write(json.dumps({"filtered_record": i, "id": rec.get("id"), "reason": BALANCE_DROP}) + "\n")
    write_llava_records(path, [records[i] for i in result.selected])
    return result.stats()


def log_training_dataset(run, cfg: DictConfig, data_dir: Path, stage: str) -> None:
    """Name the filtered set a training stage reads as its MLflow dataset input (digest = sha256)."""
    from llava_core.io import read_json

    part = "pretrain" if stage == "pretrain" else "finetune"
    manifest_path = data_dir / "filtered" / "manifest.json"
    if not manifest_path.exists():
        return
    m = read_json(manifest_path).get(part)
    if m:
        run.log_dataset(f"{cfg.data.name}/{part}", m["output_sha256"], str((data_dir / "filtered" / f"{part}.json").resolve()),
                        "training", {"records": m["records"], "kept": m["kept"], "dropped": m["dropped"]})
