"""The filtered training set a stage reads, recorded as its MLflow dataset input."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from llava_core.io import read_json
from llava_core.plan.layout import outputs


def log_training_dataset(run, cfg: DictConfig, filtered_dir: Path, stage: str) -> None:
    """Name the filtered set a training stage reads (in ``filtered_dir``, the filter's folder) as its
    MLflow dataset input (digest = sha256)."""
    filtered = outputs("filter", str(filtered_dir))
    manifest_path = Path(filtered["manifest"])
    if not manifest_path.exists():
        return
    m = read_json(manifest_path).get(stage)
    if m:
        run.log_dataset(f"{cfg.data.name}/{stage}", m["output_sha256"], str(Path(filtered[stage]).resolve()),
                        "training", {"records": m["records"], "kept": m["kept"], "dropped": m["dropped"]})
