"""Sharded evaluation: N generation jobs plus a merge job give the unsharded answers and score;
the workflow plans N shard jobs with the eval resources and a small merge job."""

from __future__ import annotations

import json
import random
import re

import pytest
from conftest import planned_jobs, run
from PIL import Image
from test_workflow import BENCHMARKS

from llava_core.cli import main
from llava_core.evaluate.tiny_llava import WORDS, build_tiny_llava


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    build_tiny_llava(d / "parts", save_to=d / "model")
    root = d / "eval"
    (root / "gqa" / "data" / "images").mkdir(parents=True)
    rng = random.Random(1)
    rows, gt = [], {}
    for i in range(11):
        Image.new("RGB", (20 + i, 30), (10 * i, 200 - 10 * i, 90)).save(root / "gqa" / "data" / "images" / f"n{i}.jpg")
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 20)))
        rows.append({"question_id": str(100 + i), "image": f"n{i}.jpg", "category": "default",
                     "text": text + "\nAnswer the question using a single word or phrase."})
        gt[str(100 + i)] = {"answer": rng.choice(["red", "blue", "yes"])}
    (root / "gqa" / "llava_gqa_testdev_balanced.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "gqa" / "data" / "testdev_balanced_questions.json").write_text(json.dumps(gt))
    return d


def evaluate(d, out, *extra):
    argv = ["evaluate", "tiny", "gqa", "--model", str(d / "model"), "--data-dir", str(d), "--eval-root",
            str(d / "eval"), "--out", str(d / out), "--results", str(d / "results"), "-o", "evaluation.batch_size=4",
            *extra]
    assert main(argv) == 0


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_merged_shards_give_the_unsharded_answers_and_score(setup):
    d = setup
    evaluate(d, "whole")
    for k in range(3):
        evaluate(d, "sharded", "--shard", f"{k}/3")
    sizes = [len(read(d / "sharded" / "shards" / f"{k}_of_3.jsonl")) for k in range(3)]
    assert sizes == [4, 4, 3]  # ceil(11 / 3) per chunk, as the official --num-chunks
    assert not (d / "sharded" / "answers.jsonl").exists()
    evaluate(d, "sharded", "--merge-shards", "3")
    whole, merged = read(d / "whole" / "answers.jsonl"), read(d / "sharded" / "answers.jsonl")
    assert [(a["question_id"], a["text"]) for a in merged] == [(a["question_id"], a["text"]) for a in whole]
    s1 = json.loads((d / "whole" / "scores.json").read_text())
    s2 = json.loads((d / "sharded" / "scores.json").read_text())
    assert s1["score"] == s2["score"] and s2["num_questions"] == 11


def test_merge_with_a_missing_shard_fails_clearly(setup, capsys):
    d = setup
    evaluate(d, "partial", "--shard", "0/2")
    argv = ["evaluate", "tiny", "gqa", "--model", str(d / "model"), "--data-dir", str(d), "--eval-root",
            str(d / "eval"), "--out", str(d / "partial"), "--results", str(d / "results"), "--merge-shards", "2"]
    assert main(argv) == 2
    assert "1_of_2.jsonl: shard answers missing" in capsys.readouterr().err


def test_workflow_plans_shard_jobs_and_one_merge_job(tmp_path):
    out = run(["snakemake", "-n", "--cores", "1", "--config", f"results={tmp_path}",
               "overrides=evaluation.benchmarks.pope.num_shards=3"]).stdout
    jobs = planned_jobs(out)
    assert jobs["evaluate_shard"] == 3 and jobs["evaluate"] == 12  # one merge job for pope, 11 unsharded
    for k in range(3):
        assert re.search(rf"stages/eval/pope/[0-9a-f]{{12}}/shards/{k}_of_3\.jsonl", out)
    # each shard job asks for the eval resources; the merge job is a small CPU job
    shard_jobs = job_blocks(out, "evaluate_shard")
    assert len(shard_jobs) == 3 and all("runtime=10" in b and "mem_mb=3000" in b for b in shard_jobs)
    evals = {b.split("benchmark=", 1)[1].split()[0].strip(","): b for b in job_blocks(out, "evaluate")}
    assert set(evals) == set(BENCHMARKS)  # unsharded benchmarks keep their single job
    assert "shards/2_of_3.jsonl" in evals["pope"] and "mem_mb=4000" in evals["pope"] and "runtime=30" in evals["pope"]
    assert "shards/" not in evals["gqa"] and "mem_mb=3000" in evals["gqa"] and "runtime=10" in evals["gqa"]


def job_blocks(out: str, rule: str) -> list[str]:
    """The dry run's description of each job of ``rule``."""
    return [b.split("\n[", 1)[0] for b in out.split(f"\nrule {rule}:")[1:]]
