import json

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_json, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.gqa import normalize_prediction
from llava_core.io import FormatError

GQA = get_benchmark("gqa")


def tiny_root(tmp_path, gold: dict[str, str]):
    rows = [{"question_id": qid, "image": f"n{i}.jpg", "text": f"Q{i}?\nAnswer the question using a single word "
             "or phrase.", "category": "default"} for i, qid in enumerate(gold)]
    write_jsonl(tmp_path / "gqa" / "llava_gqa_testdev_balanced.jsonl", rows)
    write_json(tmp_path / "gqa" / "data" / "testdev_balanced_questions.json",
               {qid: {"answer": a, "types": {"structural": "verify" if a in ("yes", "no") else "query"}}
                for qid, a in gold.items()})
    return tmp_path


def test_normalization_is_rstrip_dot_and_lower_only():
    assert normalize_prediction("Yes.") == "yes"
    assert normalize_prediction("Red...") == "red"
    assert normalize_prediction("U.S.A.") == "u.s.a"
    assert normalize_prediction(" left") == " left"  # no whitespace strip upstream


def test_hand_computed_accuracy_and_prediction_file(tmp_path):
    root = tiny_root(tmp_path, {"1": "yes", "2": "red", "3": "left", "4": "no"})
    answers = [answer("1", "Yes."), answer("2", "Red"), answer("3", " left"), answer("4", "Yes")]
    res = GQA.score(root, answers, out_dir=tmp_path / "out")
    assert res.score == pytest.approx(50.0)
    assert res.metrics == {"accuracy": pytest.approx(50.0)}
    assert res.breakdown["correct"] == 2 and res.breakdown["total"] == 4
    assert res.breakdown["by_type"] == {"structural/query": 50.0, "structural/verify": 50.0}
    preds = json.loads((tmp_path / "out" / "testdev_balanced_predictions.json").read_text())
    assert preds[0] == {"questionId": "1", "prediction": "yes"}
    assert [p["prediction"] for p in preds] == ["yes", "red", " left", "yes"]
    assert res.upload == tmp_path / "out" / "testdev_balanced_predictions.json"


def test_load_questions_layout(tmp_path):
    root = tiny_root(tmp_path, {"7": "yes"})
    (q,) = GQA.load_questions(root)
    assert q.question_id == "7" and q.default_max_new_tokens == 128 and q.extra == {}
    assert q.text == "Q0?\nAnswer the question using a single word or phrase."
    assert q.image == str((tmp_path / "gqa" / "data" / "images" / "n0.jpg").absolute())


def test_missing_files_and_answers_raise(tmp_path):
    with pytest.raises(FormatError, match="llava_gqa_testdev_balanced.jsonl.*not found"):
        GQA.load_questions(tmp_path)
    root = tiny_root(tmp_path, {"1": "yes", "2": "no"})
    with pytest.raises(FormatError, match="1 of 2 questions have no answer"):
        GQA.score(root, [answer("1", "yes")])
    (tmp_path / "gqa" / "data" / "testdev_balanced_questions.json").unlink()
    with pytest.raises(FormatError, match="testdev_balanced_questions.json.*GQA ground truth not found"):
        GQA.score(root, [answer("1", "yes"), answer("2", "no")])
    write_json(tmp_path / "gqa" / "data" / "testdev_balanced_questions.json", {"1": {"answer": "yes"}})
    with pytest.raises(FormatError, match="no ground-truth answer for question '2'"):
        GQA.score(root, [answer("1", "yes"), answer("2", "no")])


@needs_samples
def test_authors_13b_answers_on_the_sample(tmp_path):
    copy_sample(tmp_path, "gqa/llava_gqa_testdev_balanced.jsonl")
    answers = read_jsonl(SAMPLES / "gqa/answers/llava_gqa_testdev_balanced/llava-v1.5-13b.jsonl")
    # Ground truth: the authors' own (normalised) answer for the first 25 questions, wrong for the rest.
    gold = {a["question_id"]: (a["text"].rstrip(".").lower() if i < 25 else "zzz") for i, a in enumerate(answers)}
    write_json(tmp_path / "gqa" / "data" / "testdev_balanced_questions.json",
               {qid: {"answer": a} for qid, a in gold.items()})
    qs = GQA.load_questions(tmp_path)
    assert len(qs) == 40 and qs[0].question_id == "201307251"
    assert qs[0].text == "Is it overcast?\nAnswer the question using a single word or phrase."
    res = GQA.score(tmp_path, answers)
    assert res.score == pytest.approx(25 / 40 * 100)
