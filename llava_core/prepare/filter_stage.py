"""The filter stage of a dataset, as ``llava-core filter`` runs it.

``run_filter`` turns the raw records into the training sets (LLaVA JSON and the Arrow index
training memory-maps) and a manifest of what was kept and dropped (with, per set, how many
records each truncation rule would cut), optionally counting or dropping images shared with the
evaluation sets and balancing captions by noun phrase (LLaVA-1.0's CC3M recipe). It reports to
the stage's MLflow run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from llava_core.config.compose import instruct_enabled
from llava_core.plan.layout import default_dir, outputs

log = logging.getLogger(__name__)
BALANCE_DROP = "not_selected_by_balance"  # noun-phrase balancing left the caption out


def eval_overlap_index(cfg: DictConfig, data_dir: Path, workers: int, progress: bool = True):
    """Fingerprints of every image the configured benchmarks ask about (not whole folders: GQA's
    one image folder holds training and test-dev images alike)."""
    from llava_core.evalkit.every import all_kits
    from llava_core.prepare.eval_images import eval_images
    from llava_core.prepare.overlap import OverlapIndex, fingerprint_images

    eval_root = data_dir / cfg.data.eval_root
    paths: dict[str, None] = {}
    kits = all_kits()
    for name in cfg.evaluation.benchmarks:
        paths.update(dict.fromkeys(eval_images(kits[name], eval_root)))
    index = OverlapIndex(max_distance=cfg.data.filter.overlap_max_distance)
    for _, fp in fingerprint_images(list(paths), workers=workers, progress=progress):
        if fp is not None:
            index.add(*fp)
    log.info("eval overlap index: %d images from %d benchmarks", len(index), len(cfg.evaluation.benchmarks))
    return index


def run_filter(cfg: DictConfig, data_dir: Path, run, *, workers: int, out_dir: Path | None = None,
               instruct_dir: Path | None = None, progress: bool = True, extractor=None) -> dict:
    """Filter the pretraining and instruction records into ``out_dir`` (default
    ``<data_dir>/filtered``); return manifests. ``instruct_dir``: the regenerated LLaVA-Instruct's
    folder, where enabled (default ``<data_dir>/instruct``).

    Each training set is written as ``<set>.json`` (upstream's LLaVA format) and as the training
    index ``<set>.arrow/`` that training memory-maps (``llava_core/data/index.py``), both from the
    final records (after balancing, where enabled). ``extractor`` is the noun-phrase extractor of
    the balancing step (spaCy's noun chunks unless given: tests pass a small one, since no spaCy
    model can be downloaded there).
    """
    from llava_core.data.index import index_path
    from llava_core.io import sha256_file
    from llava_core.prepare.filter import filter_records, write_manifest

    f = cfg.data.filter
    out = Path(out_dir or default_dir(str(data_dir), "filter"))
    overlap = eval_overlap_index(cfg, data_dir, workers, progress).match if f.eval_overlap != "off" else None
    manifests = {}
    finetune_records, instruct_mix = data_dir / cfg.data.finetune_records, None
    if instruct_enabled(cfg):  # the regenerated LLaVA-Instruct joins the stage-2 mixture first
        finetune_records, instruct_mix = mix_generated(cfg, data_dir, out,
                                                       Path(instruct_dir or default_dir(str(data_dir), "instruct")))
    for part, records, images in (("pretrain", data_dir / cfg.data.pretrain_records, cfg.data.pretrain_images),
                                  ("finetune", finetune_records, cfg.data.finetune_images)):
        balance = part == "pretrain" and f.balance.enabled
        index = None if balance else index_path(out / f"{part}.json")  # balance_set writes its selection's
        m = filter_records(records, data_dir / images, out / f"{part}.json", workers=workers,
                           dedupe=f.dedupe, check_images=f.check_images, eval_overlap=overlap,
                           overlap_mode=f.eval_overlap, index_path=index, progress=progress)
        if balance:
            m["balance"] = balance_set(out / "pretrain.json", f.balance, extractor)
            not_selected = m["kept"] - m["balance"]["n_selected"]
            m["kept"] = m["balance"]["n_selected"]
            m["dropped"] += not_selected
            m["reasons"] = dict(sorted({**m["reasons"], BALANCE_DROP: not_selected}.items()))
            m["output_sha256"] = sha256_file(out / "pretrain.json")
        if part == "finetune" and instruct_mix is not None:
            m["instruct"] = instruct_mix
            run.log_metrics({f"data/finetune/instruct/{k}": v for k, v in instruct_mix.items() if k != "mode"})
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


def mix_generated(cfg: DictConfig, data_dir: Path, out: Path, instruct_dir: Path) -> tuple[Path, dict]:
    """Write the stage-2 mixture with the instruct job's records (in ``instruct_dir``) mixed in
    (``data.instruct.generate.mix``) to ``<out>/finetune.mixed.json``, the filter's stage-2 input;
    return it and the counts."""
    from llava_core.data.formats import read_llava_records, write_llava_records
    from llava_core.prepare.instruct.mix import mix_instruct

    ins = cfg.data.instruct
    generated = read_llava_records(outputs("instruct", str(instruct_dir))["records"])
    mixed, stats = mix_instruct(read_llava_records(data_dir / cfg.data.finetune_records), generated,
                                mode=ins.generate.mix, image_folder=ins.image_folder,
                                format_prompts=list(ins.format_prompts))
    path = out / "finetune.mixed.json"
    write_llava_records(path, mixed)
    log.info("instruct: %d generated records %s the mixture (%d LLaVA-Instruct records replaced): %d records",
             stats["generated_added"], "replace part of" if stats["mode"] == "replace" else "extend",
             stats["replaced"], stats["records"])
    return path, stats


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
    """Keep the noun-phrase-balanced subset of the records in ``path`` (rewritten atomically, and
    written as its training index ``<stem>.arrow``); list the others in its ``.dropped.jsonl`` (by
    their number in ``path``); return the stats."""
    import json

    from llava_core.data.formats import read_llava_records, write_llava_records
    from llava_core.data.index import index_path, write_training_index
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
    kept = [records[i] for i in result.selected]
    write_llava_records(path, kept)
    write_training_index(kept, index_path(path))
    return result.stats()
