import json

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.pope import binary_metrics, parse_yes_no
from llava_core.io import FormatError

POPE = get_benchmark("pope")
SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.mark.parametrize("text,expected", [
    ("No", "no"), ("No.", "no"), ("Yes", "yes"), ("yes.", "yes"),
    ("There is no dog in the image.", "no"), ("Yes, there is not a dog.", "no"),
    ("Yes. No", "yes"),          # only the first sentence counts
    ("NO", "yes"),               # exact words only: 'No', 'not', 'no'
    ("No,there", "yes"),         # commas are removed, not replaced by spaces
    ("No\nthere is", "yes"),     # split on ' ' only
    ("Nope", "yes"), ("", "yes"), ("not.", "no"),
])
def test_yes_no_parsing_quirks(text, expected):
    assert parse_yes_no(text) == expected


def test_binary_metrics_hand_computed():
    preds = ["yes", "yes", "no", "no", "yes"]
    labels = ["yes", "no", "no", "yes", "yes"]
    m = binary_metrics(preds, labels)
    assert (m["TP"], m["FP"], m["TN"], m["FN"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(3 / 5)
    assert m["yes_ratio"] == pytest.approx(3 / 5)
    # upstream divides by zero here; we report 0
    assert binary_metrics(["no", "no"], ["yes", "no"])["f1"] == 0.0


def tiny_root(tmp_path, splits: dict[str, list[str]]):
    """One question per label; question ids offset per split as in the official file."""
    qrows = []
    for s, (split, labels) in enumerate(splits.items()):
        lab_rows = []
        for i, label in enumerate(labels):
            img, text = f"COCO_val2014_{i:012d}.jpg", f"Is there a thing{i} in the image?"
            qrows.append({"question_id": s * 10_000_000 + i + 1, "image": img, "text": text + SUFFIX,
                          "category": split})
            lab_rows.append({"question_id": i + 1, "image": img, "text": text, "label": label})
        write_jsonl(tmp_path / "pope" / "coco" / f"coco_pope_{split}.json", lab_rows)
    write_jsonl(tmp_path / "pope" / "llava_pope_test.jsonl", qrows)
    return tmp_path, qrows


def test_score_is_mean_f1_over_splits(tmp_path):
    root, qrows = tiny_root(tmp_path, {"adversarial": ["yes", "no", "yes", "no"], "random": ["yes", "no"]})
    texts = ["Yes", "Yes", "No", "No", "Yes", "No"]
    answers = [answer(q["question_id"], t) for q, t in zip(qrows, texts, strict=True)]
    res = POPE.score(root, list(reversed(answers)))  # answer order does not matter
    # adversarial: TP1 FP1 TN1 FN1 -> F1 0.5; random: TP1 TN1 -> F1 1.0
    assert res.metrics["adversarial/f1"] == pytest.approx(50.0)
    assert res.metrics["random/f1"] == pytest.approx(100.0)
    assert res.score == pytest.approx(75.0) == res.metrics["f1"]
    assert res.metrics["adversarial/yes_ratio"] == pytest.approx(50.0)
    assert list(res.breakdown["splits"]) == ["adversarial", "random"]
    q = POPE.load_questions(root)[0]
    assert q.image == str((tmp_path / "pope" / "val2014" / "COCO_val2014_000000000000.jpg").absolute())
    assert q.question_id == 1 and q.default_max_new_tokens == 128


def test_label_file_problems_raise(tmp_path):
    root, qrows = tiny_root(tmp_path, {"random": ["yes", "no"]})
    answers = [answer(q["question_id"], "Yes") for q in qrows]
    label_file = tmp_path / "pope" / "coco" / "coco_pope_random.json"
    rows = read_jsonl(label_file)
    write_jsonl(label_file, rows + [dict(rows[0], question_id=3)])  # the 3,000-line-file situation
    with pytest.raises(FormatError, match="3 label lines but 2 'random' questions"):
        POPE.score(root, answers)
    write_jsonl(label_file, list(reversed(rows)))  # misaligned pairs
    with pytest.raises(FormatError, match=r"coco_pope_random.json:1: does not match question 1"):
        POPE.score(root, answers)
    write_jsonl(label_file, [{k: v for k, v in r.items() if k != "label"} for r in rows])
    with pytest.raises(FormatError, match="missing 'label'"):
        POPE.score(root, answers)
    label_file.unlink()
    with pytest.raises(FormatError, match="coco_pope_random.json: POPE 'random' annotation file not found"):
        POPE.score(root, answers)
    with pytest.raises(FormatError, match="no answer"):
        POPE.score(root, answers[:1])


@needs_samples
def test_authors_13b_answers_on_the_sample(tmp_path):
    copy_sample(tmp_path, "pope/llava_pope_test.jsonl")
    copy_sample(tmp_path, "pope/coco")
    answers = read_jsonl(SAMPLES / "pope/answers/llava-v1.5-13b.jsonl")
    res = POPE.score(tmp_path, answers)

    # Recompute by hand: order-based pairing per category, then the yes/no rule.
    questions = read_jsonl(SAMPLES / "pope/llava_pope_test.jsonl")
    text = {a["question_id"]: a["text"] for a in answers}
    f1s, recalls = {}, {}
    for split in ("adversarial", "popular", "random"):
        labels = [json.loads(line)["label"] for line in open(SAMPLES / f"pope/coco/coco_pope_{split}.json")]
        preds = ["no" if text[q["question_id"]].lower().startswith("no") else "yes"
                 for q in questions if q["category"] == split]
        tp = sum(p == lab == "yes" for p, lab in zip(preds, labels, strict=True))
        fp = sum(p == "yes" and lab == "no" for p, lab in zip(preds, labels, strict=True))
        fn = sum(p == "no" and lab == "yes" for p, lab in zip(preds, labels, strict=True))
        f1s[split], recalls[split] = 2 * tp / (2 * tp + fp + fn), tp / (tp + fn)
        assert res.metrics[f"{split}/f1"] == pytest.approx(100 * f1s[split])
    assert (res.breakdown["splits"]["adversarial"]["TP"], res.breakdown["splits"]["adversarial"]["FP"]) == (13, 5)
    assert res.score == pytest.approx(100 * (26 / 33 + 26 / 29 + 28 / 30) / 3)
    assert res.score == pytest.approx(100 * sum(f1s.values()) / 3)
    # Spec: recall is the same on all splits because the positive questions are shared. On this slice
    # adversarial and popular hold the same 15 positives (13 found); random's slice has one more.
    assert recalls["adversarial"] == recalls["popular"] == pytest.approx(13 / 15)
    assert recalls["random"] == pytest.approx(14 / 16)
