"""Generation: batching changes no answer, killed runs resume, shards merge to the unsharded answers."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from llava_core.evaluate.generate import (
    answer_questions,
    generate_answers,
    parse_shard,
    partial_path,
    shard_range,
)
from llava_core.evaluate.tiny_llava import build_tiny_llava, make_questions

KW = dict(template="vicuna_v1", aspect="pad", max_new_tokens=None, model_id="tiny-test", progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-llava")
    parts = build_tiny_llava(d / "parts", save_to=d / "model")
    questions = make_questions(d / "images", 24)
    # mixed answer budgets too: a short-budget question must not get a longer answer in a batch
    questions = [replace(q, default_max_new_tokens=6) if i % 4 == 0 else q for i, q in enumerate(questions)]
    return parts, questions, d / "model"


def texts(rows):
    return [r["text"] for r in rows]


def test_batch_of_8_gives_the_batch_of_1_answers(tiny):
    parts, questions, _ = tiny
    one = generate_answers(parts, questions, batch_size=1, **KW)
    batches = []
    eight = generate_answers(parts, questions, batch_size=8, on_batch_indexed=lambda b: batches.append(b), **KW)
    assert texts(eight) == texts(one)
    assert [r["question_id"] for r in eight] == [q.question_id for q in questions]
    # the check means something: answers vary, and some batch mixes image and text-only rows
    assert len(set(texts(one))) > 5 and all(t for t in texts(one))
    assert any(len({questions[i].image is None for i, _ in b}) == 2 for b in batches)
    # and a batch mixes prompt lengths (left padding is exercised)
    assert max(len(b) for b in batches) == 8
    # prompt and question ids follow the official answer rows
    assert eight[0]["prompt"] == questions[0].text and set(eight[0]) >= {"answer_id", "model_id", "metadata"}


def test_short_budget_is_kept_inside_a_long_batch(tiny):
    parts, questions, _ = tiny
    short = generate_answers(parts, questions[:4], batch_size=1, **{**KW, "max_new_tokens": 2})
    ids = [parts.tokenizer(r["text"], add_special_tokens=False).input_ids for r in short]
    assert all(len(i) <= 3 for i in ids)  # 2 tokens (a re-tokenised byte piece may split)


class Killed(RuntimeError):
    pass


def test_resume_after_kill_reuses_finished_batches(tiny, tmp_path):
    parts, questions, model_dir = tiny
    out = tmp_path / "answers.jsonl"
    seen = []

    def die_after_two(rows):
        seen.append(len(rows))
        if len(seen) == 2:
            raise Killed

    with pytest.raises(Killed):
        answer_questions(parts, questions, out, model_path=model_dir, batch_size=8, on_batch=die_after_two, **KW)
    assert not out.exists(), "the final file appears only when every answer is in"
    lines = partial_path(out).read_text().splitlines()
    assert partial_path(out).name == "answers.partial.jsonl"
    header = json.loads(lines[0])["header"]
    assert header["model"] == str(model_dir) and header["settings_digest"]
    assert len(lines) == 1 + 16
    # a kill in the middle of a write leaves a cut line: it is ignored
    with open(partial_path(out), "a") as fh:
        fh.write('{"key": "[\\"3\\", ')

    generated = []
    rows = answer_questions(parts, questions, out, model_path=model_dir, batch_size=8,
                            on_batch=lambda r: generated.extend(r), **KW)
    assert len(generated) == len(questions) - 16
    fresh = generate_answers(parts, questions, batch_size=8, **KW)
    assert texts(rows) == texts(fresh)
    assert [json.loads(x)["text"] for x in out.read_text().splitlines()] == texts(fresh)

    # nothing to do on a third run
    generated.clear()
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=8, on_batch=generated.extend, **KW)
    assert generated == []

    # other settings: everything is answered again
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=8, on_batch=generated.extend,
                     **{**KW, "max_new_tokens": 4})
    assert len(generated) == len(questions)

    # a retrained model at the same path: everything is answered again
    generated.clear()
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=8, on_batch=generated.extend,
                     **{**KW, "max_new_tokens": 4})
    assert generated == []
    weights = next(model_dir.glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=8, on_batch=generated.extend,
                     **{**KW, "max_new_tokens": 4})
    assert len(generated) == len(questions)


@pytest.mark.parametrize(("total", "n", "sizes"), [(10, 3, [4, 4, 2]), (10, 4, [3, 3, 3, 1]), (9, 4, [3, 3, 3, 0]),
                                                   (2, 3, [1, 1, 0]), (7, 1, [7])])
def test_shards_are_the_official_contiguous_chunks(total, n, sizes):
    ranges = [shard_range(total, k, n) for k in range(n)]
    assert [len(r) for r in ranges] == sizes
    assert [i for r in ranges for i in r] == list(range(total))


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_merged_shards_equal_unsharded_answers(tiny, tmp_path):
    parts, questions, model_dir = tiny
    whole = answer_questions(parts, questions, tmp_path / "answers.jsonl", model_path=model_dir, batch_size=8, **KW)
    merged = []
    for k in range(3):
        r = shard_range(len(questions), k, 3)
        merged += answer_questions(parts, questions[r.start:r.stop], tmp_path / "shards" / f"{k}_of_3.jsonl",
                                   model_path=model_dir, batch_size=8, **KW)
    assert [(r["question_id"], r["text"]) for r in merged] == [(r["question_id"], r["text"]) for r in whole]
