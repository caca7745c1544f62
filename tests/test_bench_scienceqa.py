import json

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, write_json

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.scienceqa import build_text, extract_letter
from llava_core.io import FormatError

SQA = get_benchmark("scienceqa")
SUFFIX = "\nAnswer with the option's letter from the given choices directly."


@pytest.mark.parametrize("pred,letter", [
    ("A", "A"), ("E", "E"), ("F", "FAILED"), ("b", "FAILED"), (" B", "FAILED"),
    ("C. a cat", "C"), ("C.", "FAILED"), ("C.cat", "FAILED"), ("F. x", "FAILED"),
    ("The answer is B.", "B"), ("So... The answer is D!", "D"),  # '.' in the regex matches any char
    ("The answer is B. The answer is C.", "FAILED"),  # needs exactly one match
    ("The answer is F.", "F"),  # parsed, but later out of range -> wrong
    ("Answer: B", "FAILED"),
])
def test_letter_extraction(pred, letter):
    assert extract_letter(pred) == letter


def test_prompt_building():
    assert build_text("<image>\nContext: hint\nQ?\nA. x\nB. y") == "Context: hint\nQ?\nA. x\nB. y" + SUFFIX
    assert build_text("Q?\nA. x\nB. y ") == "Q?\nA. x\nB. y" + SUFFIX


def records():
    return [
        {"id": "1", "image": "1/image.png", "conversations": [
            {"from": "human", "value": "<image>\nQ1?\nA. x\nB. y"}, {"from": "gpt", "value": "B"}]},
        {"id": "2", "image": "2/image.png", "conversations": [
            {"from": "human", "value": "<image>\nQ2?\nA. x\nB. y\nC. z"}, {"from": "gpt", "value": "A"}]},
        {"id": "3", "conversations": [
            {"from": "human", "value": "Q3?\nA. x\nB. y"}, {"from": "gpt", "value": "A"}]},
        {"id": "4", "image": "4/image.png", "conversations": [
            {"from": "human", "value": "<image>\nQ4?\nA. x\nB. y"}, {"from": "gpt", "value": "B"}]},
    ]


def test_score_from_gpt_turn_and_from_problems_json(tmp_path):
    write_json(tmp_path / "scienceqa" / "llava_test_CQM-A.json", records())
    answers = [answer("1", "The answer is B."), answer("2", "A. x"), answer("3", "A"), answer("4", "b")]
    res = SQA.score(tmp_path, answers)
    # IMG items 1, 2, 4: 2 correct; overall 3 of 4
    assert res.score == pytest.approx(200 / 3) == res.metrics["img_accuracy"]
    assert res.metrics["accuracy"] == pytest.approx(75.0)
    assert res.metrics["txt_accuracy"] == pytest.approx(100.0)
    assert res.breakdown["ground_truth"] == "llava_test_CQM-A.json"
    assert res.breakdown["failed_parse"] == 1

    # problems.json (answer = choice index) takes precedence over the gpt turn
    problems = {"1": {"answer": 0, "choices": ["x", "y"]}, "2": {"answer": 0, "choices": ["x", "y", "z"]},
                "3": {"answer": 0, "choices": ["x", "y"]}, "4": {"answer": 1, "choices": ["x", "y"]}}
    write_json(tmp_path / "scienceqa" / "problems.json", problems)
    write_json(tmp_path / "scienceqa" / "pid_splits.json", {"test": ["1", "2", "3"]})
    res = SQA.score(tmp_path, answers)
    assert res.breakdown["img_correct"] == 1 and res.breakdown["correct"] == 2
    assert res.breakdown["ground_truth"] == "problems.json"
    assert res.breakdown["not_in_test_split"] == 1
    del problems["4"]
    write_json(tmp_path / "scienceqa" / "problems.json", problems)
    with pytest.raises(FormatError, match="problems.json.*problem '4' missing"):
        SQA.score(tmp_path, answers)


def test_missing_file_and_answers(tmp_path):
    with pytest.raises(FormatError, match="llava_test_CQM-A.json: ScienceQA question file not found"):
        SQA.load_questions(tmp_path)
    write_json(tmp_path / "scienceqa" / "llava_test_CQM-A.json", records())
    with pytest.raises(FormatError, match="1 of 4 questions have no answer"):
        SQA.score(tmp_path, [answer(str(i), "A") for i in (1, 2, 3)])


@needs_samples
def test_real_question_file(tmp_path):
    copy_sample(tmp_path, "scienceqa/llava_test_CQM-A.json")
    qs = SQA.load_questions(tmp_path)
    raw = json.loads((SAMPLES / "scienceqa/llava_test_CQM-A.json").read_text())
    assert len(qs) == 40 and sum(q.image is not None for q in qs) == 20
    assert {q.default_max_new_tokens for q in qs} == {1024}
    text_only, with_image = qs[0], qs[1]
    assert text_only.question_id == "4" and text_only.image is None
    assert text_only.text == raw[0]["conversations"][0]["value"] + SUFFIX
    assert with_image.image == str((tmp_path / "scienceqa/images/test/5/image.png").absolute())
    assert with_image.text == raw[1]["conversations"][0]["value"][len("<image>\n"):] + SUFFIX
    assert "<image>" not in with_image.text
    # Answers in the official format (prompt carries '<image>' for image items); every other answer right.
    gold = {r["id"]: r["conversations"][1]["value"] for r in raw}
    answers = [answer(q.question_id, gold[q.question_id] if i % 2 == 0 else "E",
                      prompt=("<image>\n" if q.image else "") + q.text) for i, q in enumerate(qs)]
    res = SQA.score(tmp_path, answers)
    img_ok = sum(1 for i, q in enumerate(qs) if q.image and i % 2 == 0)
    assert res.metrics["accuracy"] == pytest.approx(50.0)
    assert res.score == pytest.approx(img_ok / 20 * 100)
