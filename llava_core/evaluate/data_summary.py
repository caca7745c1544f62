"""The data summary of the report: what the filter kept and dropped, per training set and reason.

The filter job writes ``filtered/manifest.json`` (llava_core/prepare/filter_stage.py); the report
job turns it into a small table for `snakemake --report` (here, not in report.py, so that changing
it reruns the report job and not the summary across experiments).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from llava_core.io import atomic_write


def data_summary_rows(manifest: dict[str, dict]) -> list[list]:
    """The filter's manifest as a table: a header (``count`` and one column per training set),
    then records read, kept, dropped, dropped per reason, images and records cut at
    ``model_max_length`` (a reason no set has is left out; one some set lacks counts 0 there)."""
    stage_order = {"pretrain": 0, "finetune": 1}
    sets = sorted(manifest, key=lambda s: (stage_order.get(s, len(stage_order)), s))

    def row(label: str, get) -> list:
        return [label, *(get(manifest[s]) for s in sets)]

    reasons = sorted({r for m in manifest.values() for r in m.get("reasons", {})})
    overlap = sorted({k for m in manifest.values() for k in m.get("eval_overlap", {}) if k != "mode"})
    rows = [["count", *sets], row("records read", lambda m: m["records"]), row("kept", lambda m: m["kept"]),
            row("dropped", lambda m: m["dropped"])]
    rows += [row(f"dropped: {r}", lambda m, r=r: m.get("reasons", {}).get(r, 0)) for r in reasons]
    if all("images" in m for m in manifest.values()):
        rows += [row("distinct images", lambda m: m["images"]["distinct"]),
                 row("unusable images", lambda m: m["images"]["unusable"])]
    rows += [row(f"records whose image a benchmark also has ({k})", lambda m, k=k: m["eval_overlap"].get(k, 0))
             for k in overlap]
    if all("lengths" in m for m in manifest.values()):
        rows += [row("kept but longer than model_max_length (text tokens)", lambda m: m["lengths"]["cut_by_text_rule"]),
                 row("kept but longer than model_max_length (image expanded)",
                     lambda m: m["lengths"]["cut_by_expanded_rule"])]
    return rows


def write_data_summary(manifest: dict[str, dict], path: Path) -> None:
    """Write :func:`data_summary_rows` of the filter's ``manifest.json`` as a CSV file."""
    buf = io.StringIO()
    csv.writer(buf).writerows(data_summary_rows(manifest))
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
