"""The summary across experiments: the paper's number, released checkpoints' and reproductions'
side by side, differences marked where they exceed the noise the reports know of."""

from __future__ import annotations

import json

from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.evaluate.report import judge_spread, read_reported, summary_lines, write_report


def _scores(gqa: float, llava_bench_runs: list[float]) -> dict:
    judged = {"score": sum(llava_bench_runs) / len(llava_bench_runs), "title": "LLaVA-Bench (In-the-Wild)",
              "judge": {"kind": "openai"}, "breakdown": {"runs": [{"relative": r} for r in llava_bench_runs]}}
    return {"gqa": {"score": gqa, "title": "GQA"}, "llava_bench": judged}


def _experiment(root, name, paper_row, released, scores):
    out = root / name
    out.mkdir()
    write_report(name, paper_row, scores, out)
    (out / "report_config").mkdir()
    (out / "report_config" / "stage_config.json").write_text(json.dumps(
        {"name": name, "paper_row": paper_row, "benchmarks": list(scores), "released": released}))
    return out / "report.csv"


def test_judge_spread_is_max_minus_min_of_the_judge_runs():
    assert judge_spread(_scores(60, [64.0, 66.5, 65.0])["llava_bench"]) == 2.5
    assert judge_spread({"score": 1.0, "judge": {"kind": "rule"}, "breakdown": {"runs": [30.0, 31.5]}}) == 1.5
    assert judge_spread(_scores(60, [65.0])["gqa"]) is None  # not judged


def test_summary_puts_paper_released_and_reproduction_side_by_side(tmp_path):
    released = _experiment(tmp_path, "llava-v1.5-7b-released", "llava-v1.5-7b", True, _scores(61.9, [65.0, 66.0, 65.5]))
    ours = _experiment(tmp_path, "llava-v1.5-7b", "llava-v1.5-7b", False, _scores(62.2, [66.0, 66.5, 66.5]))
    far = _experiment(tmp_path, "far", "llava-v1.5-7b", False, _scores(61.9, [70.0, 70.0, 70.0]))
    lines = summary_lines([read_reported(p) for p in (released, ours, far)])
    assert lines[2] == ("| Benchmark | Paper (llava-v1.5-7b) | llava-v1.5-7b-released (released) | llava-v1.5-7b | "
                        "llava-v1.5-7b - llava-v1.5-7b-released | far | far - llava-v1.5-7b-released |")
    gqa = next(line for line in lines if line.startswith("| GQA |"))
    paper = PAPER_NUMBERS["llava-v1.5-7b"]["gqa"]
    # Exact matching gives no noise estimate: any difference is marked; none is not.
    assert gqa == f"| GQA | {paper:.1f} | 61.9 | 62.2 | +0.3* | 61.9 | +0.0 |"
    bench = next(line for line in lines if line.startswith("| LLaVA-Bench"))
    # Released 65.5 (runs spread 1.0), ours 66.33 (spread 0.5): +0.8 is within 1.5; far's +4.5 is not.
    assert bench.endswith("| 65.5 | 66.3 | +0.8 | 70.0 | +4.5* |")


def test_summary_without_released_checkpoints_or_paper_rows_is_one_column_each(tmp_path):
    a = _experiment(tmp_path, "tiny", None, False, _scores(50.0, [60.0]))
    b = _experiment(tmp_path, "tiny-lr", None, False, _scores(55.0, [61.0]))
    lines = summary_lines([read_reported(a), read_reported(b)])
    assert lines[2] == "| Benchmark | tiny | tiny-lr |" and "| GQA | 50.0 | 55.0 |" in lines
    assert not any("marked" in line for line in lines)
