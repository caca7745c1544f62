"""`llava-core score` on the official answer formats of all 12 benchmarks (the eval-kit samples,
plus the minimal ground-truth files the samples lack), as a user scoring any LLaVA-compatible model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bench_util import SAMPLES, answer, copy_sample, needs_samples, read_jsonl, write_json, write_jsonl
from conftest import run
from test_bench_judged import llava_bench_root
from test_bench_mmbench import PNG, base_rows, write_tsv
from test_bench_mme import make_bench
from test_bench_seed import make_root

from llava_core.evaluate.benchmarks import BENCHMARKS
from llava_core.evaluate.benchmarks.mme import official_question

SUFFIX = "\nAnswer the question using a single word or phrase."
UPLOADS = {"vqav2", "vizwiz", "mmbench", "mmbench_cn", "seed_bench", "mm_vet"}


def vqav2(root: Path) -> tuple[list[dict], list[Path]]:
    dev = [{"question_id": i, "image": f"COCO_test2015_{i:012d}.jpg", "text": f"Q{i}?" + SUFFIX,
            "category": "default"} for i in (1, 3)]
    write_jsonl(root / "vqav2" / "llava_vqav2_mscoco_test-dev2015.jsonl", dev)
    write_jsonl(root / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl",
                dev + [{"question_id": 2, "image": "COCO_test2015_000000000002.jpg", "text": "Q2?" + SUFFIX}])
    return [answer(1, "Two"), answer(3, "Yes")], []


def gqa(root):
    copy_sample(root, "gqa/llava_gqa_testdev_balanced.jsonl")
    answers = read_jsonl(SAMPLES / "gqa/answers/llava_gqa_testdev_balanced/llava-v1.5-13b.jsonl")
    write_json(root / "gqa" / "data" / "testdev_balanced_questions.json",
               {str(a["question_id"]): {"answer": a["text"].lower() if i % 2 else "zzz"} for i, a in enumerate(answers)})
    return answers, []


def vizwiz(root):
    copy_sample(root, "vizwiz/llava_test.jsonl")
    return read_jsonl(SAMPLES / "vizwiz/answers/llava-v1.5-13b.jsonl"), []


def scienceqa(root):
    copy_sample(root, "scienceqa/llava_test_CQM-A.json")
    raw = json.loads((SAMPLES / "scienceqa/llava_test_CQM-A.json").read_text())
    return [answer(r["id"], r["conversations"][1]["value"], prompt=r["conversations"][0]["value"]) for r in raw], []


def textvqa(root):
    copy_sample(root, "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    questions = read_jsonl(SAMPLES / "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    answers = read_jsonl(SAMPLES / "textvqa/answers/llava-v1.5-13b.jsonl")
    write_json(root / "textvqa" / "TextVQA_0.5.1_val.json", {"data": [
        {"image_id": q["question_id"], "question": q["text"].split("\n")[0], "answers": [a["text"]] * 10}
        for q, a in zip(questions, answers, strict=True)]})
    return answers, []


def pope(root):
    copy_sample(root, "pope/llava_pope_test.jsonl")
    copy_sample(root, "pope/coco")
    return read_jsonl(SAMPLES / "pope/answers/llava-v1.5-13b.jsonl"), []


def mme(root):
    copy_sample(root, "MME/llava_mme.jsonl")
    questions = read_jsonl(SAMPLES / "MME/llava_mme.jsonl")
    answers = read_jsonl(SAMPLES / "MME/answers/llava-v1.5-13b.jsonl")
    gt: dict = {}
    for q, a in zip(questions, answers, strict=True):
        gt.setdefault(q["question_id"], []).append((official_question(q["text"])[0], a["text"]))
    make_bench(root, gt)
    return answers, []


def mmbench(root):
    answers = read_jsonl(SAMPLES / "mmbench/answers/mmbench_dev_20230712/llava-v1.5-13b.jsonl")
    rows = []
    for a in answers:
        opts = dict(zip("ABCD", a["options"] + [None] * (4 - len(a["options"])), strict=True))
        rows.append({"index": a["question_id"], "question": a["prompt"].rsplit("\nA. ", 1)[0], "hint": None, **opts,
                     "answer": "A", "image": PNG, "category": "c", "l2-category": "l2", "source": "s",
                     "comment": None, "split": "dev"})
    write_tsv(root / "mmbench" / "mmbench_dev_20230712.tsv", rows)
    return answers, []


def mmbench_cn(root):
    rows = base_rows()
    write_tsv(root / "mmbench_cn" / "mmbench_dev_cn_20231003.tsv", rows)
    return [answer(int(r["index"]), "A", round_id=0) for r in rows], []


def seed_bench(root):
    upload = read_jsonl(SAMPLES / "seed_bench/answers_upload/llava-v1.5-13b.jsonl")
    make_root(root, [(u["question_id"], u["prediction"], 1, "image") for u in upload])
    return [answer(int(u["question_id"]), u["prediction"]) for u in upload], []


def llava_bench(root):
    answers, _ = llava_bench_root(root)
    return answers, [SAMPLES / "llava-bench-in-the-wild/reviews/llava-v1.5-13b-eval1.jsonl"]


def mm_vet(root):
    copy_sample(root, "mm-vet/llava-mm-vet.jsonl")
    answers = read_jsonl(SAMPLES / "mm-vet/answers/llava-v1.5-13b.jsonl")
    grades = {f"v1_{a['question_id']}": {"model": ["gpt-4-0613"], "content": ["0.5"], "score": [0.5]} for a in answers}
    write_json(root / "grades" / "llava_gpt-4-0613-grade-1runs.json", grades)
    return answers, [root / "grades" / "llava_gpt-4-0613-grade-1runs.json"]


BUILDERS = {f.__name__: f for f in (vqav2, gqa, vizwiz, scienceqa, textvqa, pope, mme, mmbench, mmbench_cn,
                                    seed_bench, llava_bench, mm_vet)}


def test_every_benchmark_has_a_case():
    assert set(BUILDERS) == set(BENCHMARKS)


@needs_samples
@pytest.mark.parametrize("name", list(BUILDERS))
def test_score_cli_on_official_formats(name, tmp_path):
    root = tmp_path / "eval"
    answers, reviews = BUILDERS[name](root)
    answers_path = write_jsonl(tmp_path / "answers" / f"{name}.jsonl", answers)
    out = tmp_path / "out"
    cmd = ["llava-core", "score", name, "--eval-root", str(root), "--answers", str(answers_path), "--out", str(out)]
    if reviews:
        cmd += ["--reviews", *map(str, reviews)]
    res = json.loads(run(cmd, timeout=300).stdout)
    assert res["benchmark"] == name and "score" in res and isinstance(res["metrics"], dict)
    if name in UPLOADS:
        assert Path(res["upload"]).is_file(), res
        assert Path(res["upload"]).parent == out
    if name not in ("vqav2", "vizwiz", "mmbench_cn"):  # server-scored (NaN here) or too small to mean much
        assert res["score"] == res["score"]  # not NaN


def test_score_cli_reports_bad_input(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"question_id": 1}])
    proc = run(["llava-core", "score", "gqa", "--eval-root", str(tmp_path), "--answers", str(tmp_path / "a.jsonl")],
               check=False)
    assert proc.returncode == 2 and "missing field(s) ['text']" in proc.stderr
    shutil.rmtree(tmp_path)
