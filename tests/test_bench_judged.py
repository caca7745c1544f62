import json
import math

import pytest
from bench_util import SAMPLES, copy_sample, needs_samples, read_jsonl, write_json, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.base import ReviewsRequired
from llava_core.evaluate.benchmarks.llava_bench import summarize_reviews
from llava_core.io import FormatError

LLAVA_W = get_benchmark("llava_bench")
MMVET = get_benchmark("mm_vet")


def llava_bench_root(tmp_path):
    answers = read_jsonl(SAMPLES / "llava-bench-in-the-wild/answers/llava-v1.5-13b.jsonl")
    reviews = read_jsonl(SAMPLES / "llava-bench-in-the-wild/reviews/llava-v1.5-13b-eval1.jsonl")
    cats = {r["question_id"]: r["category"].removeprefix("llava_bench_") for r in reviews}
    write_jsonl(tmp_path / "llava-bench-in-the-wild" / "questions.jsonl",
                [{"question_id": a["question_id"], "image": f"{a['question_id']:03d}.jpg", "text": a["prompt"],
                  "category": cats[a["question_id"]]} for a in answers])
    return answers, reviews


def test_summarize_hand_computed():
    rows = [{"question_id": 0, "category": "llava_bench_conv", "tuple": [8, 10]},
            {"question_id": 1, "category": "llava_bench_conv", "tuple": [10, 5]},
            {"question_id": 2, "category": "llava_bench_detail", "tuple": [5, 5]}]
    out = summarize_reviews(rows, "r.jsonl")
    assert out["conv"] == pytest.approx((15 / 18 * 100, 90.0, 75.0))
    assert out["all"][0] == pytest.approx(20 / 23 * 100)


@needs_samples
def test_llava_bench_authors_review_run(tmp_path):
    answers, reviews = llava_bench_root(tmp_path)
    qs = LLAVA_W.load_questions(tmp_path)
    assert qs[0].text == "What is the name of this famous sight in the photo?" and qs[0].default_max_new_tokens == 1024
    assert qs[0].image == str((tmp_path / "llava-bench-in-the-wild" / "images" / "000.jpg").absolute())
    with pytest.raises(ReviewsRequired, match="run the judge first, or pass .* --reviews"):
        LLAVA_W.score(tmp_path, answers)
    run1 = SAMPLES / "llava-bench-in-the-wild/reviews/llava-v1.5-13b-eval1.jsonl"
    res = LLAVA_W.score(tmp_path, answers, reviews=[run1])
    # by hand from the 12 tuples: conv (8,10)(9,2)(9,2)(10,10); detail (9,6.5)(9,6)(9,7);
    # complex (8,6)(9,8.5)(8,7.5)(8,9)(8,9)
    assert res.metrics["conv/relative"] == pytest.approx(6 / 9 * 100)
    assert res.metrics["detail/relative"] == pytest.approx(6.5 / 9 * 100)
    assert res.metrics["complex/relative"] == pytest.approx(8 / 8.2 * 100)
    assert res.score == pytest.approx(83.5 / 104 * 100)
    assert res.metrics["reference_score"] == pytest.approx(104 / 12 * 10)
    # a second run with every model score one lower; the score is the mean over runs
    run2 = tmp_path / "eval2.jsonl"
    write_jsonl(run2, [dict(r, tuple=[r["tuple"][0], r["tuple"][1] - 1]) for r in reviews])
    res2 = LLAVA_W.score(tmp_path, answers, reviews=[run1, run2])
    assert res2.score == pytest.approx((83.5 / 104 + 71.5 / 104) / 2 * 100)
    assert len(res2.breakdown["runs"]) == 2
    # reviews of another answer file, and incomplete reviews
    stale = [dict(answers[0], answer_id="other"), *answers[1:]]
    with pytest.raises(FormatError, match="belong to another answer file"):
        LLAVA_W.score(tmp_path, stale, reviews=[run1])
    write_jsonl(run2, reviews[:-1])
    with pytest.raises(FormatError, match="no review for 1 question"):
        LLAVA_W.score(tmp_path, answers, reviews=[run2])


@needs_samples
def test_mm_vet_grader_output(tmp_path):
    copy_sample(tmp_path, "mm-vet/llava-mm-vet.jsonl")
    answers = read_jsonl(SAMPLES / "mm-vet/answers/llava-v1.5-13b.jsonl")
    qs = MMVET.load_questions(tmp_path)
    assert qs[0].text == "What is x in the equation?" and qs[0].default_max_new_tokens == 1024
    assert qs[1].image == str((tmp_path / "mm-vet" / "images" / "v1_1.png").absolute())
    with pytest.raises(ReviewsRequired):
        MMVET.score(tmp_path, answers, out_dir=tmp_path / "out")
    results = json.loads((tmp_path / "out" / "mm-vet_results.json").read_text())
    assert results["v1_0"] == answers[0]["text"] and len(results) == 20
    # grader output: run 1 all 0.5; run 2 1.0 on the first 5, else 0.0
    grades = {f"v1_{a['question_id']}": {"model": ["gpt-4-0613"] * 2, "content": ["", ""],
                                         "score": [0.5, 1.0 if i < 5 else 0.0]} for i, a in enumerate(answers)}
    write_json(tmp_path / "grade.json", grades)
    write_json(tmp_path / "mm-vet" / "mm-vet.json",
               {f"v1_{a['question_id']}": {"capability": ["rec"] + (["ocr"] if i < 10 else [])}
                for i, a in enumerate(answers)})
    res = MMVET.score(tmp_path, answers, reviews=[tmp_path / "grade.json"])
    assert res.breakdown["runs"] == pytest.approx([50.0, 25.0])
    assert res.score == pytest.approx(37.5)
    assert res.metrics["std"] == pytest.approx(12.5)
    assert res.metrics["cap/ocr"] == pytest.approx((50.0 + 50.0) / 2)
    assert res.metrics["cap/rec"] == pytest.approx(37.5)
    del grades["v1_3"]
    write_json(tmp_path / "grade.json", grades)
    with pytest.raises(FormatError, match="no grade for 1 question"):
        MMVET.score(tmp_path, answers, reviews=[tmp_path / "grade.json"])
    assert not math.isnan(res.score)
    with pytest.raises(FormatError, match="no answer"):
        MMVET.score(tmp_path, answers[:-1], reviews=[tmp_path / "grade.json"])
