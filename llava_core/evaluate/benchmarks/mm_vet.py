"""MM-Vet: answers are converted to the grader's ``{"v1_<qid>": answer}`` JSON
(``convert_mmvet_for_eval.py``); the score comes from the official MM-Vet GPT-4 grader's output
(``<model>_<gpt>-grade-<n>runs.json``: ``{"v1_<qid>": {"score": [one per run], ...}}``): per run,
the mean score * 100, averaged over runs, also per capability when ``mm-vet.json`` is present."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from llava_core.evalkit.mm_vet import MMVetKit, grader_key
from llava_core.evaluate.benchmarks.base import Score
from llava_core.evaluate.judge import JudgedBenchmark
from llava_core.io import FormatError, read_json, write_json


class MMVet(MMVetKit, JudgedBenchmark):
    def write_results(self, answers: list[dict], out_dir: Path) -> Path:
        """The grader's input, ``{"v1_<qid>": text}``."""
        path = Path(out_dir) / self.upload_file
        write_json(path, {grader_key(a["question_id"]): a["text"] for a in answers})
        return path

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Average the grader's per-run totals over every run in the given grade JSON files."""
        got = self.answered(eval_root, answers)
        upload = self.write_results(answers, out_dir) if out_dir is not None else None
        reviews = self.need_reviews(reviews, "grade JSON (mm-vet_evaluator output)")
        caps: dict[str, list[str]] = {}
        meta_path = self.path(eval_root, "metadata")
        if meta_path.is_file():
            meta = read_json(meta_path)
            caps = {k: list(v.get("capability", [])) for k, v in meta.items() if isinstance(v, dict)}

        keys = [grader_key(q["question_id"]) for q in got.questions]
        run_totals: list[float] = []
        cap_runs: dict[str, list[float]] = defaultdict(list)
        for path in reviews:
            grades = read_json(path)
            if not isinstance(grades, dict):
                raise FormatError(path, None, "expected the grader's {'v1_<id>': {'score': [...]}} JSON")
            missing = [k for k in keys if not isinstance(grades.get(k), dict) or not grades[k].get("score")]
            if missing:
                raise FormatError(path, None, f"no grade for {len(missing)} question(s) (first: {missing[:3]})",
                                  "the grader must cover every question")
            n_runs = min(len(grades[k]["score"]) for k in keys)
            for i in range(n_runs):
                scores = {k: float(grades[k]["score"][i]) for k in keys}
                run_totals.append(statistics.fmean(scores.values()) * 100.0)
                per_cap: dict[str, list[float]] = defaultdict(list)
                for k, s in scores.items():
                    for c in caps.get(k, []):
                        per_cap[c].append(s)
                for c, vals in per_cap.items():
                    cap_runs[c].append(statistics.fmean(vals) * 100.0)
        metrics = {"total": statistics.fmean(run_totals),
                   "std": statistics.pstdev(run_totals) if len(run_totals) > 1 else 0.0}
        metrics.update({f"cap/{c}": statistics.fmean(v) for c, v in sorted(cap_runs.items())})
        breakdown = {"runs": run_totals, "files": [str(p) for p in reviews], "questions": len(keys),
                     "extra_answers": got.extra}
        return Score(metrics["total"], metrics, breakdown, upload)


