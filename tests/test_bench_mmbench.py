import base64
import math

import pandas as pd
import pytest
from bench_util import SAMPLES, answer, needs_samples, read_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.benchmarks.mmbench import build_prompt, is_none, match_option, row_options
from llava_core.io import FormatError

MMB = get_benchmark("mmbench")
MMB_CN = get_benchmark("mmbench_cn")
SUFFIX = "\nAnswer with the option's letter from the given choices directly."
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 20).decode()
JPG = base64.b64encode(b"\xff\xd8\xff" + b"1" * 20).decode()


def write_tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def base_rows():
    common = {"category": "ocr", "source": "s", "l2-category": "l2", "comment": None, "split": "dev"}
    return [
        {"index": 0, "question": "What color?", "hint": None, "A": "red", "B": "blue", "C": None, "D": None,
         "answer": "A", "image": PNG, **common},
        {"index": 1, "question": "How many?", "hint": "Look closely.", "A": "1", "B": "2", "C": "3",
         "D": "none", "answer": "C", "image": JPG, **dict(common, category="count")},
        # circular copies of question 0 and 1
        {"index": 1_000_000, "question": "What color?", "hint": None, "A": "blue", "B": "red", "C": None,
         "D": None, "answer": "B", "image": PNG, **common},
        {"index": 1_000_001, "question": "How many?", "hint": "Look closely.", "A": "2", "B": "3", "C": "1",
         "D": None, "answer": "B", "image": JPG, **dict(common, category="count")},
    ]


def test_helpers():
    assert is_none(None) and is_none(float("nan")) and is_none("None") and is_none("nan") and not is_none("0")
    assert row_options({"A": "x", "B": "y", "C": "none", "D": "z"}) == ["x", "y"]
    assert build_prompt({"question": "Q?", "hint": "H"}, ["x", "y"]) == "H\nQ?\nA. x\nB. y"
    assert build_prompt({"question": "Q?", "hint": float("nan")}, ["x"]) == "Q?\nA. x"
    assert match_option("B", ["x", "y"]) == "B"
    assert match_option("(B) y", ["x", "y"]) == "B"
    assert match_option("B. y", ["x", "y"]) == "B"
    assert match_option("y.", ["x", "y"]) == "B"
    assert match_option("C", ["x", "y"]) is None  # beyond the options
    assert match_option("I am not sure", ["x", "y"]) is None


def test_load_and_circular_score(tmp_path):
    write_tsv(tmp_path / "mmbench" / "mmbench_dev_20230712.tsv", base_rows())
    qs = MMB.load_questions(tmp_path)
    assert [q.question_id for q in qs] == [0, 1, 1_000_000, 1_000_001]
    assert qs[0].text == "What color?\nA. red\nB. blue" + SUFFIX
    assert qs[1].text == "Look closely.\nHow many?\nA. 1\nB. 2\nC. 3" + SUFFIX  # stops at 'none'
    assert qs[1].extra == {"round_id": 0, "options": ["1", "2", "3"], "option_char": ["A", "B", "C"]}
    assert qs[0].default_max_new_tokens == 1024
    assert qs[0].image.endswith("mmbench/images/mmbench_dev_20230712/0.png")
    assert qs[1].image.endswith("1.jpg")
    with open(qs[0].image, "rb") as fh:
        assert fh.read().startswith(b"\x89PNG")
    assert MMB.load_questions(tmp_path)[0].image == qs[0].image  # decoded once, reused

    answers = [answer(0, "A"), answer(1, "C. 3"), answer(1_000_000, "B"), answer(1_000_001, "I think 3")]
    res = MMB.score(tmp_path, answers, out_dir=tmp_path / "out")
    # question 0 right in both passes; question 1 wrong in its copy (no letter) -> circular 1/2
    assert res.score == pytest.approx(50.0) == res.metrics["circular_accuracy"]
    assert res.metrics["vanilla_accuracy"] == pytest.approx(100.0)
    assert res.metrics["row_accuracy"] == pytest.approx(75.0)
    assert res.breakdown["circular_by_category"] == {"count": 0.0, "ocr": 100.0}
    assert res.breakdown["unmatched_answers"] == 1
    upload = pd.read_table(res.upload) if res.upload.suffix == ".tsv" else pd.read_excel(res.upload)
    assert list(upload.columns)[:7] == ["index", "question", "A", "B", "C", "D", "prediction"]
    assert "image" not in upload.columns and list(upload["prediction"])[:2] == ["A", "C. 3"]
    with pytest.raises(FormatError, match="1 of 4 questions have no answer"):
        MMB.score(tmp_path, answers[:3])


def test_test_split_without_answers_and_cn_suffix(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "answer"} for r in base_rows()]
    write_tsv(tmp_path / "mmbench_cn" / "mmbench_dev_cn_20231003.tsv", rows)
    qs = MMB_CN.load_questions(tmp_path)
    assert qs[0].text == "What color?\nA. red\nB. blue\n请直接回答选项字母。"
    res = MMB_CN.score(tmp_path, [answer(q.question_id, "A") for q in qs])
    assert math.isnan(res.score) and "OpenCompass" in res.breakdown["status"]
    with pytest.raises(FormatError, match="mmbench_dev_20230712.tsv: MMBench TSV not found"):
        MMB.load_questions(tmp_path)


@needs_samples
def test_prompts_match_the_authors_answer_file(tmp_path):
    answers = read_jsonl(SAMPLES / "mmbench/answers/mmbench_dev_20230712/llava-v1.5-13b.jsonl")
    rows = []
    for a in answers:  # rebuild TSV rows from the answer rows (prompt = question + options, no hint)
        question = a["prompt"].rsplit("\nA. ", 1)[0]
        opts = dict(zip("ABCD", a["options"] + [None] * (4 - len(a["options"])), strict=True))
        rows.append({"index": a["question_id"], "question": question, "hint": None, **opts, "answer": "A",
                     "image": PNG, "category": "c"})
    write_tsv(tmp_path / "mmbench" / "mmbench_dev_20230712.tsv", rows)
    qs = MMB.load_questions(tmp_path)
    for q, a in zip(qs, answers, strict=True):
        assert q.text == a["prompt"] + SUFFIX
        assert q.extra == {"round_id": a["round_id"], "options": a["options"], "option_char": a["option_char"]}
    res = MMB.score(tmp_path, answers)
    n_a = sum(a["text"] == "A" for a in answers)
    assert res.score == pytest.approx(n_a / len(answers) * 100)  # no circular copies in the slice
