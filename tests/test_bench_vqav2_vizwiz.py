import json
import math

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.io import FormatError

VQAV2 = get_benchmark("vqav2")
VIZWIZ = get_benchmark("vizwiz")
SUFFIX = "\nAnswer the question using a single word or phrase."


def test_vqav2_upload_covers_every_test2015_id(tmp_path):
    dev = [{"question_id": 1, "image": "COCO_test2015_1.jpg", "text": "Q1?" + SUFFIX, "category": "default"},
           {"question_id": 3, "image": "COCO_test2015_3.jpg", "text": "Q3?" + SUFFIX, "category": "default"}]
    write_jsonl(tmp_path / "vqav2" / "llava_vqav2_mscoco_test-dev2015.jsonl", dev)
    answers = [answer(1, "Two."), answer(3, "The Red one")]
    with pytest.raises(FormatError, match="llava_vqav2_mscoco_test2015.jsonl.*not found"):
        VQAV2.score(tmp_path, answers)
    full = dev + [{"question_id": 2, "image": "COCO_test2015_2.jpg", "text": "Q2?" + SUFFIX}]
    write_jsonl(tmp_path / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl", full)
    res = VQAV2.score(tmp_path, answers, out_dir=tmp_path / "out")
    assert math.isnan(res.score) and "EvalAI" in res.breakdown["status"]
    upload = json.loads((tmp_path / "out" / "vqav2_test-dev2015_upload.json").read_text())
    assert upload == [{"question_id": 1, "answer": "2"}, {"question_id": 3, "answer": "red 1"},
                      {"question_id": 2, "answer": ""}]
    assert res.breakdown["upload_answered"] == 2
    q = VQAV2.load_questions(tmp_path)[0]
    assert q.image == str((tmp_path / "vqav2" / "test2015" / "COCO_test2015_1.jpg").absolute())
    with pytest.raises(FormatError, match="1 of 2 questions have no answer"):
        VQAV2.score(tmp_path, answers[:1])


@needs_samples
def test_vizwiz_sample_upload(tmp_path):
    copy_sample(tmp_path, "vizwiz/llava_test.jsonl")
    answers = read_jsonl(SAMPLES / "vizwiz/answers/llava-v1.5-13b.jsonl")
    qs = VIZWIZ.load_questions(tmp_path)
    assert qs[0].text.endswith("\nWhen the provided information is insufficient, respond with 'Unanswerable'."
                               + SUFFIX)
    assert qs[0].image == str((tmp_path / "vizwiz" / "test" / "VizWiz_test_00000000.jpg").absolute())
    res = VIZWIZ.score(tmp_path, answers, out_dir=tmp_path / "out")
    assert math.isnan(res.score)
    upload = json.loads((tmp_path / "out" / "vizwiz_test_upload.json").read_text())
    assert len(upload) == 30
    assert upload[0] == {"image": "VizWiz_test_00000000.jpg", "answer": "black"}
    assert upload[1] == {"image": "VizWiz_test_00000001.jpg", "answer": "unanswerable"}
    n_unans = sum(a["text"] == "Unanswerable" for a in answers)
    assert res.breakdown["unanswerable"] == n_unans
    assert res.metrics["unanswerable_ratio"] == pytest.approx(n_unans / 30 * 100)
    with pytest.raises(FormatError, match="1 of 30 questions have no answer"):
        VIZWIZ.score(tmp_path, answers[1:])
