import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_json, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.textvqa import question_from_prompt
from llava_core.io import FormatError

TEXTVQA = get_benchmark("textvqa")
SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.mark.parametrize("prompt,question", [
    ("What Brand?\nReference OCR token: A, B" + SUFFIX, "what brand?"),
    ("Reference OCR token: A, B\nWhat Brand?" + SUFFIX, "what brand?"),
    ("What Brand?" + SUFFIX, "what brand?"),
    ("OCR tokens: a b Question: What Brand? Short answer:", "what brand?"),
    ("one line only", None),
    ("a\nb\nc\nd", None),
])
def test_question_extraction(prompt, question):
    assert question_from_prompt(prompt) == question


def test_tiny_hand_computed(tmp_path):
    rows = [{"question_id": "img1", "image": "img1.jpg", "text": "What is it?\nReference OCR token: X" + SUFFIX},
            {"question_id": "img2", "image": "img2.jpg", "text": "Which Year?\nReference OCR token: 1999" + SUFFIX}]
    write_jsonl(tmp_path / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl", rows)
    write_json(tmp_path / "textvqa" / "TextVQA_0.5.1_val.json", {"data": [
        {"image_id": "img1", "question": "what is it?", "answers": ["A Dog"] * 2 + ["cat"] * 8},
        {"image_id": "img2", "question": "which year?", "answers": ["1999"] * 10},
    ]})
    res = TEXTVQA.score(tmp_path, [answer("img1", "dog."), answer("img2", "Nineteen ninety nine")])
    assert res.score == pytest.approx((0.6 + 0.0) / 2 * 100)
    q = TEXTVQA.load_questions(tmp_path)[0]
    assert q.image == str((tmp_path / "textvqa" / "train_images" / "img1.jpg").absolute())
    # a question not in the annotations, or not 10 answers
    write_json(tmp_path / "textvqa" / "TextVQA_0.5.1_val.json", {"data": [
        {"image_id": "img1", "question": "what is it?", "answers": ["dog"] * 9}]})
    with pytest.raises(FormatError, match="9 answers"):
        TEXTVQA.score(tmp_path, [answer("img1", "dog"), answer("img2", "x")])
    (tmp_path / "textvqa" / "TextVQA_0.5.1_val.json").unlink()
    with pytest.raises(FormatError, match="TextVQA_0.5.1_val.json: TextVQA annotation file not found"):
        TEXTVQA.score(tmp_path, [answer("img1", "dog"), answer("img2", "x")])


@needs_samples
def test_authors_13b_answers_on_the_sample(tmp_path):
    copy_sample(tmp_path, "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    answers = read_jsonl(SAMPLES / "textvqa/answers/llava-v1.5-13b.jsonl")
    questions = read_jsonl(SAMPLES / "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    # item i gets k = i % 5 ground-truth answers equal (after normalisation) to the prediction:
    # accuracy 0, 0.3, 0.6, 0.9, 1.0 -> mean 0.56 over the 30 items
    data = []
    for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
        k = i % 5
        data.append({"image_id": q["question_id"], "question": q["text"].split("\n")[0],
                     "answers": [a["text"].upper() + "."] * k + ["zzz"] * (10 - k)})
    write_json(tmp_path / "textvqa" / "TextVQA_0.5.1_val.json", {"data": data})
    qs = TEXTVQA.load_questions(tmp_path)
    assert qs[0].text == questions[0]["text"] and "Reference OCR token: DAKOTA" in qs[0].text
    res = TEXTVQA.score(tmp_path, answers)
    assert res.score == pytest.approx(56.0)
    # question ids are image ids and repeat (30 questions, 21 ids): rows are told apart by prompt
    assert len({q["question_id"] for q in questions}) == 21
    assert TEXTVQA.score(tmp_path, list(reversed(answers))).score == pytest.approx(56.0)
    dup = next(a for i, a in enumerate(answers) if any(b["question_id"] == a["question_id"] for b in answers[:i]))
    with pytest.raises(FormatError, match="appears 2 times in the question file but has fewer answers"):
        TEXTVQA.score(tmp_path, [a for a in answers if a is not dup])
