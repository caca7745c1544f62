"""The filter stage on the tiny world: eval-overlap dropping and noun-phrase balancing, with the
counts reaching the manifest and the stage's MLflow run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from llava_core.config.compose import load_experiment
from llava_core.data.index import modality_length, open_training_index
from llava_core.prepare.filter_stage import run_filter


class _Run:
    """Records what the stage reports to MLflow."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.datasets: list[tuple] = []
        self.artifacts: list[str] = []

    def log_metrics(self, metrics: dict, **_: object) -> None:
        self.metrics.update(metrics)

    def log_dataset(self, *args: object) -> None:
        self.datasets.append(args)

    def log_artifact(self, path: object, *_: object) -> None:
        self.artifacts.append(str(path))


def _words(captions):
    """A tiny noun-phrase extractor: the colour and shape words of the synthetic captions."""
    for c in captions:
        yield re.findall(r"\b(red|green|blue|yellow|purple|orange|white|black|circle|square|triangle)\b", c.lower())


def test_overlap_drop_and_balancing_reach_the_manifest(tiny_local: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "tiny"
    shutil.copytree(tiny_local / "data" / "tiny", data_dir, symlinks=True, ignore=shutil.ignore_patterns("mirror"))
    # the DAG ran the filter in report mode (its folder: the tiny variant's link)
    reported = json.loads((tiny_local / "tiny" / "filtered" / "manifest.json").read_text())
    cfg = load_experiment("tiny", ["data.filter.eval_overlap=drop", "data.filter.balance.enabled=true",
                                   "data.filter.balance.min_count=3", "data.filter.balance.max_per_phrase=40"])
    run = _Run()
    manifests = run_filter(cfg, data_dir, run, workers=2, progress=False, extractor=_words)

    ft = manifests["finetune"]
    overlap = reported["finetune"]["eval_overlap"].get("eval_overlap_perceptual", 0)
    assert overlap > 0  # the synthetic eval images look like training ones (flat colours)
    assert ft["reasons"].get("eval_overlap_perceptual", 0) == overlap
    # What report mode kept, less its records on the dropped images (records share images, and
    # report mode had already dropped exact duplicates among them).
    drops = [json.loads(line) for line in (data_dir / "filtered" / "finetune.dropped.jsonl").read_text().splitlines()]
    overlapping = {d["image"] for d in drops if d["reason"] == "eval_overlap_perceptual"}
    report_kept = json.loads((tiny_local / "tiny" / "filtered" / "finetune.json").read_text())
    assert ft["kept"] == reported["finetune"]["kept"] - sum(r.get("image") in overlapping for r in report_kept)

    pre = manifests["pretrain"]
    bal = pre["balance"]
    kept = json.loads((data_dir / "filtered" / "pretrain.json").read_text())
    assert len(kept) == pre["kept"] == bal["n_selected"] < pre["records"]
    assert pre["kept"] + pre["dropped"] == pre["records"]
    assert pre["reasons"]["not_selected_by_balance"] == pre["records"] - pre["kept"] - sum(
        v for k, v in pre["reasons"].items() if k != "not_selected_by_balance")
    drops = (data_dir / "filtered" / "pretrain.dropped.jsonl").read_text().splitlines()
    assert len(drops) == pre["dropped"]
    assert bal["n_phrases_capped"] > 0  # some colour or shape occurs in more than 40 captions
    assert run.metrics["data/pretrain/kept"] == pre["kept"]
    assert {d[0] for d in run.datasets} == {"tiny/pretrain", "tiny/finetune"}
    written = json.loads((data_dir / "filtered" / "manifest.json").read_text())
    assert written["pretrain"]["output_sha256"] == pre["output_sha256"]
    # The training index of each set holds its final records (after balancing), in the same order.
    for part in ("pretrain", "finetune"):
        index = open_training_index(data_dir / "filtered" / f"{part}.arrow")
        records = json.loads((data_dir / "filtered" / f"{part}.json").read_text())
        assert list(index) == records and len(index) == manifests[part]["kept"]
        assert index.modality_lengths() == [modality_length(r) for r in records]
    assert not [p.name for p in (data_dir / "filtered").iterdir() if p.name.endswith(".tmp")]
