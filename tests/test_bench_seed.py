import pytest
from bench_util import SAMPLES, answer, needs_samples, read_jsonl, write_json, write_jsonl

from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.io import FormatError

SEED = get_benchmark("seed_bench")
SUFFIX = "\nAnswer with the option's letter from the given choices directly."


def make_root(root, items):
    """items: (question_id, answer, type_id, data_type)."""
    write_jsonl(root / "seed_bench" / "llava-seed-bench.jsonl", [
        {"question_id": int(qid), "image": f"SEED-Bench-{'image' if dt == 'image' else 'video-image'}/{qid}.jpg",
         "text": f"Q{qid}?\nA. a\nB. b\nC. c\nD. d" + SUFFIX, "category": "c"} for qid, _, _, dt in items])
    write_json(root / "seed_bench" / "SEED-Bench.json", {
        "question_type": {"Scene Understanding": 1, "Instance Counting": 2, "Action Recognition": 10},
        "questions": [{"question_id": qid, "answer": ans, "question_type_id": t, "data_type": dt}
                      for qid, ans, t, dt in items]})


def test_exact_match_and_splits(tmp_path):
    make_root(tmp_path, [("1", "A", 1, "image"), ("2", "B", 1, "image"), ("3", "C", 2, "image"),
                         ("4", "D", 10, "video")])
    answers = [answer(1, "A"), answer(2, "B."), answer(3, "C"), answer(4, "A")]  # 'B.' is wrong: exact match
    res = SEED.score(tmp_path, answers, out_dir=tmp_path / "out")
    assert res.score == pytest.approx(50.0)
    assert res.metrics["image_accuracy"] == pytest.approx(200 / 3)
    assert res.metrics["video_accuracy"] == pytest.approx(0.0)
    assert res.breakdown["by_type"] == {"Action Recognition": 0.0, "Instance Counting": 100.0,
                                           "Scene Understanding": 50.0}
    assert read_jsonl(tmp_path / "out" / "seed_bench_upload.jsonl")[1] == {"question_id": "2", "prediction": "B."}
    q = SEED.load_questions(tmp_path)[3]
    assert q.question_id == 4 and q.default_max_new_tokens == 128
    assert q.image == str((tmp_path / "seed_bench" / "SEED-Bench-video-image" / "4.jpg").absolute())
    (tmp_path / "seed_bench" / "SEED-Bench.json").unlink()
    with pytest.raises(FormatError, match="SEED-Bench.json: SEED-Bench annotation file not found"):
        SEED.score(tmp_path, answers)


@needs_samples
def test_authors_upload_file_round_trip(tmp_path):
    upload = read_jsonl(SAMPLES / "seed_bench/answers_upload/llava-v1.5-13b.jsonl")
    # ground truth = the authors' prediction for even rows, another letter for odd rows
    other = {"A": "B", "B": "C", "C": "D", "D": "A"}
    make_root(tmp_path, [(u["question_id"], u["prediction"] if i % 2 == 0 else other[u["prediction"]], 1, "image")
                         for i, u in enumerate(upload)])
    answers = [answer(int(u["question_id"]), u["prediction"]) for u in upload]
    res = SEED.score(tmp_path, answers, out_dir=tmp_path / "out")
    assert res.score == pytest.approx(50.0)
    assert read_jsonl(tmp_path / "out" / "seed_bench_upload.jsonl") == upload
