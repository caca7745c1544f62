import json

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.mme import official_question, parse_mme_answer
from llava_core.io import FormatError

MME = get_benchmark("mme")
SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.mark.parametrize("text,label", [
    ("Yes", "yes"), ("no", "no"), ("Yes, there is.", "yes"), ("No.", "no"), ("Not really", "no"),
    ("None", "no"), ("I think yes", "other"), ("", "other"), ("Nope", "no"), ("yes and no", "yes"),
])
def test_answer_parsing(text, label):
    assert parse_mme_answer(text) == label


def test_official_question_restoration():
    assert official_question("Is it red?" + SUFFIX) == ["Is it red? Please answer yes or no.",
                                                        "Is it red?  Please answer yes or no."]
    assert official_question("Is it red? Please answer yes or no.") == ["Is it red? Please answer yes or no."]


def make_bench(root, gt: dict[str, list[tuple[str, str]]]):
    """gt: question_id -> [(question, answer)] ; writes both MME layouts (flat and images/ + YN/)."""
    bench = root / "MME" / "MME_Benchmark_release_version"
    for qid, pairs in gt.items():
        category, file = qid.split("/")[0], qid.split("/")[-1].split(".")[0] + ".txt"
        folder = bench / category / "questions_answers_YN" if "/images/" in qid else bench / category
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text("".join(f"{q}\t{a}\n" for q, a in pairs))
        if "/images/" in qid:
            (bench / category / "images").mkdir(exist_ok=True)


def test_tiny_hand_computed(tmp_path):
    yn = " Please answer yes or no."
    gt = {
        "existence/1.jpg": [("Is there a dog?" + yn, "Yes"), ("Is there a cat?" + yn, "No")],
        "existence/2.jpg": [("Is there a car?" + yn, "Yes"), ("Is there a bus?" + " " + yn, "No")],  # 2 spaces
        "artwork/images/9.jpg": [("Is it Monet?" + yn, "Yes"), ("Is it Manet?" + yn, "No")],
        "code_reasoning/0001.png": [("Is it python?" + yn, "Yes"), ("Is it C?" + yn, "No")],
    }
    make_bench(tmp_path, gt)
    questions = [{"question_id": qid, "image": qid, "text": q.split(" Please")[0] + SUFFIX,
                  "category": qid.split("/")[0]} for qid, pairs in gt.items() for q, _ in pairs]
    write_jsonl(tmp_path / "MME" / "llava_mme.jsonl", questions)
    preds = ["Yes", "No",            # existence img 1: both right
             "Yes", "Maybe",         # existence img 2: one right ('other')
             "No", "No",             # artwork: one right
             "yes", "no"]            # code_reasoning: both right
    answers = [answer(q["question_id"], p, prompt=q["text"]) for q, p in zip(questions, preds, strict=True)]
    res = MME.score(tmp_path, answers[::-1], out_dir=tmp_path / "out")  # order of answers is irrelevant
    m = res.metrics
    assert m["existence/acc"] == pytest.approx(75.0) and m["existence/acc_plus"] == pytest.approx(50.0)
    assert m["existence/score"] == pytest.approx(125.0)
    assert m["artwork/score"] == pytest.approx(50.0 + 0.0)
    assert m["code_reasoning/score"] == pytest.approx(200.0)
    assert res.score == m["perception"] == pytest.approx(175.0)
    assert m["cognition"] == pytest.approx(200.0)
    assert res.breakdown["subtasks"]["existence"]["other"] == 1
    assert "OCR" in res.breakdown["perception_missing"]
    lines = (tmp_path / "out" / "mme_eval_tool" / "existence.txt").read_text().splitlines()
    assert lines[3] == "2.txt\tIs there a bus?  Please answer yes or no.\tNo\tMaybe"
    q = MME.load_questions(tmp_path)[4]
    assert q.image == str((tmp_path / "MME/MME_Benchmark_release_version/artwork/images/9.jpg").absolute())
    # a question whose ground truth is missing
    make_bench(tmp_path, {"existence/2.jpg": [("Is there a car?" + yn, "Yes")]})
    with pytest.raises(FormatError, match="no ground truth for 2.txt question 'Is there a bus"):
        MME.score(tmp_path, answers)


def test_missing_benchmark_folder(tmp_path):
    write_jsonl(tmp_path / "MME" / "llava_mme.jsonl",
                [{"question_id": "count/1.jpg", "image": "count/1.jpg", "text": "Q?" + SUFFIX}])
    with pytest.raises(FormatError, match="MME_Benchmark_release_version: MME benchmark folder not found"):
        MME.score(tmp_path, [answer("count/1.jpg", "Yes")])


@needs_samples
def test_authors_13b_answers_on_the_sample(tmp_path):
    copy_sample(tmp_path, "MME/llava_mme.jsonl")
    questions = read_jsonl(SAMPLES / "MME/llava_mme.jsonl")
    answers = read_jsonl(SAMPLES / "MME/answers/llava-v1.5-13b.jsonl")
    # Ground truth: the model's own answer, except flipped on every 3rd question.
    gt: dict[str, list[tuple[str, str]]] = {}
    flip = {"Yes": "No", "No": "Yes"}
    for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
        label = flip[a["text"]] if i % 3 == 0 else a["text"]
        gt.setdefault(q["question_id"], []).append((official_question(q["text"])[0], label))
    make_bench(tmp_path, gt)
    res = MME.score(tmp_path, answers)
    # by hand: per subtask, acc over 6 questions and acc+ over 3 images
    expected_p = expected_c = 0.0
    for cat in {q["category"] for q in questions}:
        idx = [i for i, q in enumerate(questions) if q["category"] == cat]
        ok = [i % 3 != 0 for i in idx]
        acc = sum(ok) / len(ok) * 100
        acc_plus = sum(ok[j] and ok[j + 1] for j in range(0, len(ok), 2)) / (len(ok) / 2) * 100
        assert res.metrics[f"{cat}/score"] == pytest.approx(acc + acc_plus)
        if cat in ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning"):
            expected_c += acc + acc_plus
        else:
            expected_p += acc + acc_plus
    assert res.score == pytest.approx(expected_p) and res.metrics["cognition"] == pytest.approx(expected_c)
    assert res.breakdown["perception_missing"] == [] and res.breakdown["cognition_missing"] == []
    assert json.dumps(res.to_dict())  # plain JSON-serialisable result
