"""The report: every benchmark's number beside the paper's, per experiment and across them."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import atomic_write


def report_rows(scores: dict[str, dict], paper_row: str | None) -> list[dict]:
    """One row per benchmark: name, paper number, this run's number, difference."""
    paper = PAPER_NUMBERS.get(paper_row or "", {})
    rows = []
    for name, res in scores.items():
        ours = float(res["score"])
        ref = paper.get(name)
        rows.append({"benchmark": name, "title": res.get("title", name), "paper": ref, "ours": ours,
                     "delta": None if ref is None or math.isnan(ours) else ours - ref})
    return rows


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def write_report(experiment: str, paper_row: str | None, scores: dict[str, dict], out_dir: Path) -> list[dict]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` into ``out_dir``."""
    rows = report_rows(scores, paper_row)
    ref = paper_row or "none"
    lines = [f"# {experiment}", "", f"Compared with the paper's row `{ref}` (LLaVA MODEL_ZOO).", "",
             "| Benchmark | Paper | This run | Difference |", "|---|---:|---:|---:|"]
    for r in rows:
        delta = "n/a" if r["delta"] is None else f"{r['delta']:+.1f}"
        lines.append(f"| {r['title']} | {_fmt(r['paper'])} | {_fmt(r['ours'])} | {delta} |")
    lines += ["", "Units as in the paper: percent, except MME (perception points, max 2000).", "",
              "![scores](report.png)", ""]
    with atomic_write(out_dir / "report.md") as fh:
        fh.write("\n".join(lines))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "title", "paper", "ours", "delta"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out_dir / "report.csv") as fh:
        fh.write(buf.getvalue())
    _plot(rows, experiment, ref, out_dir / "report.png")
    return rows


def _plot(rows: list[dict], experiment: str, ref: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # MME is on a 0-2000 scale; plot it as percent of its maximum so the bars share an axis.
    def scale(name: str, v: float | None) -> float:
        return 0.0 if v is None or math.isnan(v) else (v / 20.0 if name == "mme" else v)

    names = [r["title"] for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.5))
    ax.bar([i - 0.2 for i in x], [scale(r["benchmark"], r["paper"]) for r in rows], 0.4, label=f"paper ({ref})")
    ax.bar([i + 0.2 for i in x], [scale(r["benchmark"], r["ours"]) for r in rows], 0.4, label=experiment)
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylabel("score (MME: % of 2000)")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def write_summary(experiments: dict[str, Path], out: Path) -> None:
    """A table across experiments from their ``report.csv`` files."""
    table: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for exp, csv_path in experiments.items():
        with open(csv_path, encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["title"] not in table:
                    order.append(r["title"])
                table.setdefault(r["title"], {})[exp] = r["ours"]
    names = list(experiments)
    lines = ["# All experiments", "", "| Benchmark | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for title in order:
        cells = [_fmt(float(table[title][e])) if table[title].get(e) else "n/a" for e in names]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    with atomic_write(out) as fh:
        fh.write("\n".join(lines) + "\n")
