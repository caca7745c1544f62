"""The report: every benchmark's number beside the paper's, per experiment and across them."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import atomic_write


def judge_spread(res: dict) -> float | None:
    """The spread (max - min) of a judged benchmark's scores over its judge runs: the run-to-run
    noise a report can know of (None for a benchmark no judge scores)."""
    runs = (res.get("breakdown") or {}).get("runs") if res.get("judge") else None
    if not runs:
        return None
    values = [float(r["relative"]) if isinstance(r, dict) else float(r) for r in runs]
    return max(values) - min(values)


def report_rows(scores: dict[str, dict], paper_row: str | None) -> list[dict]:
    """One row per benchmark: name, paper number, chance level, this run's number, and how far it
    is from the paper (``delta``) and above chance (``above_chance``); ``noise``: the spread of the
    judge runs of a judged benchmark."""
    paper = PAPER_NUMBERS.get(paper_row or "", {})
    rows = []
    for name, res in scores.items():
        ours = float(res["score"])
        ref, chance = paper.get(name), res.get("chance")
        scored = not math.isnan(ours)
        rows.append({"benchmark": name, "title": res.get("title", name), "paper": ref, "chance": chance, "ours": ours,
                     "delta": ours - ref if ref is not None and scored else None,
                     "above_chance": ours - chance if chance is not None and scored else None,
                     "noise": judge_spread(res)})
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
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "title", "paper", "chance", "ours", "delta", "above_chance",
                                             "noise"])
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


@dataclass
class ReportedRun:
    """One experiment as the summary sees it: its report's rows, its paper row, and whether it
    evaluated released weights or a model trained here."""

    name: str
    rows: dict[str, dict]  # benchmark -> report.csv row
    paper_row: str | None
    released: bool


def read_reported(csv_path: Path) -> ReportedRun:
    """An experiment's ``report.csv`` and, beside it, the report's resolved ``stage_config.json``."""
    csv_path = Path(csv_path)
    with open(csv_path, encoding="utf-8") as fh:
        rows = {r["benchmark"]: r for r in csv.DictReader(fh)}
    meta_path = csv_path.parent / "report_config" / "stage_config.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    return ReportedRun(csv_path.parent.name, rows, meta.get("paper_row"), bool(meta.get("released")))


def _num(row: dict | None, key: str) -> float | None:
    value = (row or {}).get(key)
    if value in (None, ""):
        return None
    x = float(value)
    return None if math.isnan(x) else x


def summary_lines(runs: list[ReportedRun]) -> list[str]:
    """The table across experiments: per group of experiments compared with the same paper row,
    the paper's number, each released checkpoint's, each reproduction's, and each reproduction's
    difference from the released weights, marked ``*`` where it exceeds the noise the reports
    know of (the spread of the judge runs of both, for judged benchmarks; none otherwise)."""
    groups: dict[str | None, list[ReportedRun]] = {}
    for run in runs:
        groups.setdefault(run.paper_row, []).append(run)
    header, columns = ["Benchmark"], []  # each column: a function of the benchmark -> cell text
    for row, members in groups.items():
        released = [r for r in members if r.released]
        trained = [r for r in members if not r.released]
        if row in PAPER_NUMBERS:
            header.append(f"Paper ({row})")
            columns.append(lambda b, row=row: _fmt(PAPER_NUMBERS[row].get(b)))
        for r in released:
            header.append(f"{r.name} (released)")
            columns.append(lambda b, r=r: _fmt(_num(r.rows.get(b), "ours")))
        for t in trained:
            header.append(t.name)
            columns.append(lambda b, t=t: _fmt(_num(t.rows.get(b), "ours")))
            for r in released:
                header.append(f"{t.name} - {r.name}")
                columns.append(lambda b, t=t, r=r: _difference(t.rows.get(b), r.rows.get(b)))
    order = list(dict.fromkeys(b for run in runs for b in run.rows))
    titles = {b: run.rows[b]["title"] for run in runs for b in run.rows}
    lines = ["# All experiments", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += [f"| {titles[b]} | " + " | ".join(col(b) for col in columns) + " |" for b in order]
    if any(r.released for r in runs) and any(not r.released for r in runs):
        lines += ["", "A difference is marked `*` where it is larger than the run-to-run noise the reports know "
                  "of: for the judged benchmarks (LLaVA-Bench, MM-Vet), the spread of the judge runs of both "
                  "experiments; the others are scored by greedy decoding and exact matching, which give no "
                  "noise estimate, so any difference is marked."]
    return lines


def _difference(trained: dict | None, released: dict | None) -> str:
    a, b = _num(trained, "ours"), _num(released, "ours")
    if a is None or b is None:
        return "n/a"
    noise = (_num(trained, "noise") or 0.0) + (_num(released, "noise") or 0.0)
    return f"{a - b:+.1f}" + ("*" if abs(a - b) > noise + 1e-9 else "")


def write_summary(experiments: dict[str, Path], out: Path) -> None:
    """The table across experiments (:func:`summary_lines`) from their ``report.csv`` files."""
    runs = [read_reported(path) for path in experiments.values()]
    with atomic_write(out) as fh:
        fh.write("\n".join(summary_lines(runs)) + "\n")
