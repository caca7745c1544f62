"""The report: every benchmark's number beside the paper's, per experiment and across them."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import atomic_write, read_json, write_json

log = logging.getLogger(__name__)


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
                     "noise": judge_spread(res), "quantization": res.get("quantization", "")})
    return rows


#: How a quantised evaluation is marked beside its number (evaluation.quantization).
QUANT_MARK = {"8bit": "8-bit", "4bit": "4-bit"}
QUANT_NOTE = ("Scores marked 8-bit or 4-bit come from a model loaded quantised (`evaluation.quantization`), not "
              "in the paper's fp16: the quantisation can change answers (docs/evaluation.md), so they are not a "
              "reproduction of the paper's number.")


def _title(r: dict) -> str:
    mark = QUANT_MARK.get(r.get("quantization") or "")
    return f"{r['title']} ({mark})" if mark else r["title"]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}"


def group_stats(rows: list[dict], members: dict[str, dict[str, float]], reference: str) -> list[dict]:
    """Per benchmark of ``rows``: the mean, standard deviation (n - 1) and n of the group members'
    scores (``members``: variant -> benchmark -> score), the difference of the mean from the
    ``reference`` column (``paper`` or ``chance``), and whether it is larger than the seeds explain
    (:func:`significant`)."""
    out = []
    for r in rows:
        values = [v[r["benchmark"]] for v in members.values()
                  if r["benchmark"] in v and not math.isnan(v[r["benchmark"]])]
        n = len(values)
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if n > 1 else None
        ref = r[reference]
        diff = mean - ref if mean is not None and ref is not None else None
        out.append({"benchmark": r["benchmark"], "title": r["title"], "reference": ref, "mean": mean, "std": std,
                    "n": n, "diff": diff, "significant": significant(diff, std, n)})
    return out


def significant(diff: float | None, std: float | None, n: int) -> bool | None:
    """Whether a group mean's difference from a reference exceeds what its seeds explain:
    ``|diff| > 2 x std / sqrt(n)`` (about a 95% interval of the mean, normal approximation). None
    when it cannot be told (fewer than two scores)."""
    if diff is None or std is None or n < 2:
        return None
    return abs(diff) > 2.0 * std / math.sqrt(n)


SIGNIFICANCE_NOTE = ("`*`: the difference of the mean from the reference is larger than the seeds explain, "
                     "|mean - reference| > 2 x std / sqrt(n) (std over the n seeds, with n - 1; about a 95% "
                     "interval of the mean under a normal approximation). Without `*` the difference is within "
                     "seed-to-seed noise.")


def _mean_cell(g: dict) -> str:
    if g["mean"] is None:
        return "n/a"
    return f"{g['mean']:.1f} ± {g['std']:.1f}" if g["std"] is not None else f"{g['mean']:.1f}"


def _diff_cell(g: dict) -> str:
    return "n/a" if g["diff"] is None else f"{g['diff']:+.1f}" + ("*" if g["significant"] else "")


def write_report(experiment: str, paper_row: str | None, scores: dict[str, dict], out_dir: Path,
                 note: str = "", group: tuple[str, dict[str, dict[str, float]]] | None = None) -> list[dict]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` into ``out_dir``: each score beside
    the paper's row ``paper_row``, or, without one, beside its chance level. ``note``: a line under
    the title. ``group``: (its name, variant -> benchmark -> score) of the seeds of this
    configuration, this one included: their mean, standard deviation and n are shown too, and the
    figure draws their spread."""
    rows = report_rows(scores, paper_row)
    lines = [f"# {experiment}", ""] + ([note, ""] if note else [])
    if paper_row:
        lines += [f"Compared with the paper's row `{paper_row}` (LLaVA MODEL_ZOO); chance: what an answerer "
                  "that does not see the image gets.", "",
                  "| Benchmark | Paper | This run | Difference | Chance |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {_title(r)} | {_fmt(r['paper'])} | {_fmt(r['ours'])} | {_signed(r['delta'])} | "
                  f"{_fmt(r['chance'])} |" for r in rows]
    else:
        lines += ["Compared with each benchmark's chance level: the expected score of an answerer that knows the "
                  "answer format but does not see the image.", "",
                  "| Benchmark | Chance | This run | Above chance |", "|---|---:|---:|---:|"]
        lines += [f"| {_title(r)} | {_fmt(r['chance'])} | {_fmt(r['ours'])} | {_signed(r['above_chance'])} |"
                  for r in rows]
    if any(r["quantization"] for r in rows):
        lines += ["", QUANT_NOTE]
    stats = None
    if group is not None:
        name, members = group
        reference = "paper" if paper_row else "chance"
        stats = group_stats(rows, members, reference)
        lines += ["", f"## The seeds of this configuration: group `{name}`, n = {len(members)}", "",
                  f"Variants: {', '.join(f'`{m}`' for m in members)}.", "",
                  f"| Benchmark | {reference.capitalize()} | Mean ± std | n | Mean - {reference} |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {g['title']} | {_fmt(g['reference'])} | {_mean_cell(g)} | {g['n']} | {_diff_cell(g)} |"
                  for g in stats]
        lines += ["", SIGNIFICANCE_NOTE]
    lines += ["", "Units as in the paper: percent, except MME (perception points, max 2000; "
              "the tiny world's MME has 5 perception subtasks, max 1000).", "", "![scores](report.png)", ""]
    with atomic_write(out_dir / "report.md") as fh:
        fh.write("\n".join(lines))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "title", "paper", "chance", "ours", "delta", "above_chance",
                                             "noise", "quantization"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out_dir / "report.csv") as fh:
        fh.write(buf.getvalue())
    reference = ("paper", f"paper ({paper_row})") if paper_row else ("chance", "chance")
    _plot(rows, experiment, reference, out_dir / "report.png", stats)
    return rows


def _plot(rows: list[dict], experiment: str, reference: tuple[str, str], path: Path,
          stats: list[dict] | None = None) -> None:
    """Bars of this run's scores beside ``reference`` = (row key, legend label); with ``stats``
    (a seed group's), the group's mean too, its standard deviation as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # MME is on a 0-2000 scale; plot it as percent of its maximum so the bars share an axis.
    def scale(name: str, v: float | None) -> float:
        return 0.0 if v is None or math.isnan(v) else (v / 20.0 if name == "mme" else v)

    key, label = reference
    names = [r["title"] for r in rows]
    x = range(len(rows))
    width = 0.27 if stats else 0.4
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.5))
    ax.bar([i - width / (1 if stats else 2) for i in x], [scale(r["benchmark"], r[key]) for r in rows], width,
           label=label, color="tab:gray" if key == "chance" else "tab:blue")
    ax.bar([i + (0 if stats else width / 2) for i in x], [scale(r["benchmark"], r["ours"]) for r in rows], width,
           label=experiment, color="tab:orange")
    if stats:
        ax.bar([i + width for i in x], [scale(g["benchmark"], g["mean"]) for g in stats], width,
               yerr=[scale(g["benchmark"], g["std"]) for g in stats], capsize=3, color="tab:green",
               label=f"seeds: mean ± std (n = {max(g['n'] for g in stats)})")
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylabel("score (MME: % of 2000)")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


@dataclass
class ReportedRun:
    """One variant as the summary sees it: its report's rows, its paper row, whether it evaluated
    released weights or a model trained here, and its seed group."""

    name: str
    rows: dict[str, dict]  # benchmark -> report.csv row
    paper_row: str | None
    released: bool
    group: str = ""
    reference_row: str | None = None  # a paper row shown beside it as a reference only

    @property
    def quantization(self) -> str:
        """``8-bit``/``4-bit`` (joined if mixed) when any of its scores came from a quantised model."""
        marks = sorted({QUANT_MARK[q] for r in self.rows.values() if (q := r.get("quantization")) in QUANT_MARK})
        return "/".join(marks)


def read_reported(csv_path: Path) -> ReportedRun:
    """A variant's ``report.csv`` and, beside it, the report's resolved ``stage_config.json`` and
    ``variant.json`` (its group)."""
    csv_path = Path(csv_path)
    with open(csv_path, encoding="utf-8") as fh:
        rows = {r["benchmark"]: r for r in csv.DictReader(fh)}
    meta_path = csv_path.parent / "report_config" / "stage_config.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    variant_path = csv_path.parent / "report_config" / "variant.json"
    variant = json.loads(variant_path.read_text(encoding="utf-8")) if variant_path.is_file() else {}
    name = csv_path.parent.name
    return ReportedRun(name, rows, meta.get("paper_row"), bool(meta.get("released")), variant.get("group") or name,
                       variant.get("reference_row"))


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
    groups: dict[tuple[str | None, bool], list[ReportedRun]] = {}
    for run in runs:  # a run with a reference row (another LLM or tower) sits beside that row's numbers
        key = (run.paper_row, False) if run.paper_row or not run.reference_row else (run.reference_row, True)
        groups.setdefault(key, []).append(run)
    header, columns = ["Benchmark"], []  # each column: a function of the benchmark -> cell text
    for (row, reference), members in groups.items():
        released = [r for r in members if r.released]
        trained = [r for r in members if not r.released]
        if row in PAPER_NUMBERS:
            header.append(f"Paper ({row}{', reference' if reference else ''})")
            columns.append(lambda b, row=row: _fmt(PAPER_NUMBERS[row].get(b)))
        for r in released:
            header.append(f"{r.name} (released{', ' + r.quantization if r.quantization else ''})")
            columns.append(lambda b, r=r: _fmt(_num(r.rows.get(b), "ours")))
        for t in trained:
            header.append(f"{t.name} ({t.quantization})" if t.quantization else t.name)
            columns.append(lambda b, t=t: _fmt(_num(t.rows.get(b), "ours")))
            for r in released:
                header.append(f"{t.name} - {r.name}")
                columns.append(lambda b, t=t, r=r: _difference(t.rows.get(b), r.rows.get(b)))
    order = list(dict.fromkeys(b for run in runs for b in run.rows))
    titles = {b: run.rows[b]["title"] for run in runs for b in run.rows}
    lines = ["# All experiments", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += [f"| {titles[b]} | " + " | ".join(col(b) for col in columns) + " |" for b in order]
    if any(r.quantization for r in runs):
        lines += ["", QUANT_NOTE]
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


def group_lines(runs: list[ReportedRun]) -> list[str]:
    """Per seed group (variants differing only in their seeds; two or more, trained here): the
    mean ± std and n of each benchmark, and the mean's difference from the paper (or, without a
    paper row, from chance), marked where the seeds do not explain it."""
    groups: dict[str, list[ReportedRun]] = {}
    for run in runs:
        if not run.released:
            groups.setdefault(run.group, []).append(run)
    groups = {g: members for g, members in groups.items() if len(members) > 1}
    if not groups:
        return []
    lines = ["", "## Seed groups", ""]
    for name, members in groups.items():
        paper_row = members[0].paper_row
        reference = "paper" if paper_row in PAPER_NUMBERS else "chance"
        first = members[0].rows
        rows = [{"benchmark": b, "title": first[b]["title"],
                 "paper": PAPER_NUMBERS.get(paper_row or "", {}).get(b), "chance": _num(first[b], "chance")}
                for b in first]
        scores = {m.name: {b: (_num(m.rows.get(b), "ours") if _num(m.rows.get(b), "ours") is not None
                               else math.nan) for b in first} for m in members}
        stats = group_stats(rows, scores, reference)
        lines += [f"### `{name}` (n = {len(members)}: {', '.join(f'`{m.name}`' for m in members)})", "",
                  f"| Benchmark | {reference.capitalize()} | Mean ± std | n | Mean - {reference} |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {g['title']} | {_fmt(g['reference'])} | {_mean_cell(g)} | {g['n']} | {_diff_cell(g)} |"
                  for g in stats]
        lines.append("")
    return lines + [SIGNIFICANCE_NOTE]


def write_summary(experiments: dict[str, Path], out: Path) -> None:
    """The table across variants (:func:`summary_lines`) and their seed groups (:func:`group_lines`),
    from their ``report.csv`` files."""
    runs = [read_reported(path) for path in experiments.values()]
    with atomic_write(out) as fh:
        fh.write("\n".join(summary_lines(runs) + group_lines(runs)) + "\n")


def read_group_scores(group_scores: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """variant -> benchmark -> score, from each member's ``scores.json`` (``group_scores``: variant ->
    benchmark -> path, as the workflow's job file lists a seed group)."""
    return {variant: {bench: float(read_json(path)["score"]) for bench, path in paths.items()}
            for variant, paths in group_scores.items()}


#: What a variant folder calls the stage folders it links to.
LINK_NAMES = {"download": "data", "filter": "filtered", "instruct": "instruct", "pretrain": "pretrain",
              "finetune": "finetune", "import": "import"}


def link_stages(variant_dir: Path, dirs: dict[str, str]) -> dict[str, str]:
    """Link each stage folder the variant uses into its folder (``finetune``, ``eval/pope``, ``data``,
    ...: relative symlinks, so people find a variant's model and answers where they expect them),
    write ``stages.json`` (stage -> folder relative to the results folder, and its MLflow run where
    one was recorded) and return
    stage -> MLflow run id. A real folder already at a link's place (results of an older layout) is
    kept, and said so."""
    from llava_core.plan.stage import Stage

    variant_dir = Path(variant_dir)
    runs, listed = {}, {}
    for key, folder in dirs.items():
        st = Stage.parse(key)
        record = Path(folder) / ".mlflow" / f"{st.slug}.json"
        if record.is_file():
            runs[key] = read_json(record)["run_id"]
        # relative to the results folder, so a copied or moved results folder still lists its own
        listed[key] = {"dir": os.path.relpath(Path(folder).resolve(), variant_dir.parent.resolve()),
                       "mlflow_run": runs.get(key)}
        name = f"eval/{st.benchmark}" if st.kind == "evaluate" else LINK_NAMES.get(st.kind)
        if name is None:
            continue
        link = variant_dir / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() and not link.is_symlink():
            log.warning("%s is a folder, not a link: kept (results of an older layout?)", link)
            continue
        tmp = link.with_name(f".{link.name}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(Path(folder).resolve(), link.parent.resolve()), tmp)
        os.replace(tmp, link)
    write_json(variant_dir / "stages.json", listed)
    return runs
