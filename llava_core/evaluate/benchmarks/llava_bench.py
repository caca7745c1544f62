"""LLaVA-Bench-in-the-Wild, scored from GPT-4 review files (``eval_gpt_review_bench.py`` output) as
``summarize_gpt_review.py``: relative score = mean(model score) / mean(GPT-4 reference score) * 100,
overall and per category. The paper's number is the mean over 3 review runs."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from llava_core.evalkit.llava_bench import CATEGORY_PREFIX, LLaVABenchKit
from llava_core.evaluate.benchmarks.base import Score
from llava_core.evaluate.judge import JudgedBenchmark
from llava_core.io import FormatError, read_jsonl


def summarize_reviews(rows: list[dict], path: Path | str) -> dict[str, tuple[float, float, float]]:
    """category (and ``"all"``) -> (relative score, reference mean * 10, model mean * 10) for one run."""
    scores: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for lineno, row in enumerate(rows, 1):
        pair = row.get("tuple", row.get("score"))
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise FormatError(path, lineno, "review needs 'tuple': [reference score, model score]")
        pair = (float(pair[0]), float(pair[1]))
        if "category" in row:
            scores[str(row["category"]).removeprefix(CATEGORY_PREFIX)].append(pair)
        scores["all"].append(pair)
    out = {}
    for cat, pairs in scores.items():
        ref = statistics.fmean(p[0] for p in pairs)
        model = statistics.fmean(p[1] for p in pairs)
        out[cat] = (model / ref * 100.0 if ref else float("nan"), ref * 10.0, model * 10.0)
    return out


class LLaVABench(LLaVABenchKit, JudgedBenchmark):
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Average the relative scores of the given review runs (one jsonl per GPT-4 run)."""
        reviews = self.need_reviews(reviews, "review jsonl files (eval_gpt_review_bench.py output)")
        got = self.answered(eval_root, answers)
        by_id = {str(a["question_id"]): a for a in answers}  # extra answers too: their reviews are checked
        wanted = {str(q["question_id"]) for q in got.questions}

        runs = []
        for path in reviews:
            rows = read_jsonl(path)
            if not rows:
                raise FormatError(path, None, "review file is empty")
            for lineno, row in enumerate(rows, 1):
                if "question_id" not in row:
                    raise FormatError(path, lineno, "review needs 'question_id'")
                ans = by_id.get(str(row["question_id"]))
                if ans is not None and "answer2_id" in row and "answer_id" in ans \
                        and row["answer2_id"] != ans["answer_id"]:
                    raise FormatError(path, lineno, f"reviews answer {row['answer2_id']!r}, but the answer to "
                                      f"question {row['question_id']!r} is {ans['answer_id']!r}",
                                      "these reviews belong to another answer file: rerun the judge")
            rows = [r for r in rows if str(r["question_id"]) in wanted]
            missing = wanted - {str(r["question_id"]) for r in rows}
            if missing:
                raise FormatError(path, None, f"no review for {len(missing)} question(s) "
                                  f"(first: {sorted(missing)[:3]})", "the judge run must cover every question")
            runs.append(summarize_reviews(rows, path))

        cats = sorted({c for run in runs for c in run} - {"all"})
        metrics: dict[str, float] = {}
        for cat in ["all", *cats]:
            prefix = "" if cat == "all" else f"{cat}/"
            vals = [run[cat] for run in runs if cat in run]
            metrics[f"{prefix}relative"] = statistics.fmean(v[0] for v in vals)
            metrics[f"{prefix}reference_score"] = statistics.fmean(v[1] for v in vals)
            metrics[f"{prefix}model_score"] = statistics.fmean(v[2] for v in vals)
        breakdown = {"runs": [{"file": str(p), "relative": run["all"][0],
                               **{f"{c}/relative": run[c][0] for c in cats if c in run}}
                              for p, run in zip(reviews, runs, strict=True)],
                     "extra_answers": got.extra}
        return Score(metrics["relative"], metrics, breakdown)


