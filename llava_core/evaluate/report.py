"""The report: every benchmark's number beside the paper's, per experiment and across them."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import atomic_write


def report_rows(scores: dict[str, dict], paper_row: str | None) -> list[dict]:
    """One row per benchmark: name, paper number, chance level, this run's number, and how far it
    is from the paper (``delta``) and above chance (``above_chance``)."""
    paper = PAPER_NUMBERS.get(paper_row or "", {})
    rows = []
    for name, res in scores.items():
        ours = float(res["score"])
        ref, chance = paper.get(name), res.get("chance")
        scored = not math.isnan(ours)
        rows.append({"benchmark": name, "title": res.get("title", name), "paper": ref, "chance": chance, "ours": ours,
                     "delta": ours - ref if ref is not None and scored else None,
                     "above_chance": ours - chance if chance is not None and scored else None})
    return rows


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}"


def write_report(experiment: str, paper_row: str | None, scores: dict[str, dict], out_dir: Path,
                 note: str = "") -> list[dict]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` into ``out_dir``: each score beside
    the paper's row ``paper_row``, or, without one, beside its chance level. ``note``: a line under
    the title."""
    rows = report_rows(scores, paper_row)
    lines = [f"# {experiment}", ""] + ([note, ""] if note else [])
    if paper_row:
        lines += [f"Compared with the paper's row `{paper_row}` (LLaVA MODEL_ZOO); chance: what an answerer "
                  "that does not see the image gets.", "",
                  "| Benchmark | Paper | This run | Difference | Chance |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['title']} | {_fmt(r['paper'])} | {_fmt(r['ours'])} | {_signed(r['delta'])} | "
                  f"{_fmt(r['chance'])} |" for r in rows]
    else:
        lines += ["Compared with each benchmark's chance level: the expected score of an answerer that knows the "
                  "answer format but does not see the image.", "",
                  "| Benchmark | Chance | This run | Above chance |", "|---|---:|---:|---:|"]
        lines += [f"| {r['title']} | {_fmt(r['chance'])} | {_fmt(r['ours'])} | {_signed(r['above_chance'])} |"
                  for r in rows]
    lines += ["", "Units as in the paper: percent, except MME (perception points, max 2000; "
              "the tiny world's MME has 5 perception subtasks, max 1000).", "", "![scores](report.png)", ""]
    with atomic_write(out_dir / "report.md") as fh:
        fh.write("\n".join(lines))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "title", "paper", "chance", "ours", "delta", "above_chance"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out_dir / "report.csv") as fh:
        fh.write(buf.getvalue())
    reference = ("paper", f"paper ({paper_row})") if paper_row else ("chance", "chance")
    _plot(rows, experiment, reference, out_dir / "report.png")
    return rows


def _plot(rows: list[dict], experiment: str, reference: tuple[str, str], path: Path) -> None:
    """Bars of this run's scores beside ``reference`` = (row key, legend label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # MME is on a 0-2000 scale; plot it as percent of its maximum so the bars share an axis.
    def scale(name: str, v: float | None) -> float:
        return 0.0 if v is None or math.isnan(v) else (v / 20.0 if name == "mme" else v)

    key, label = reference
    names = [r["title"] for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.5))
    ax.bar([i - 0.2 for i in x], [scale(r["benchmark"], r[key]) for r in rows], 0.4, label=label,
           color="tab:gray" if key == "chance" else "tab:blue")
    ax.bar([i + 0.2 for i in x], [scale(r["benchmark"], r["ours"]) for r in rows], 0.4, label=experiment,
           color="tab:orange")
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
