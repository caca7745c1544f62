"""Tests for the synthetic tiny world: determinism, real formats, label alignment, mirror archives."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_core.data.formats import read_llava_records, read_questions
from llava_core.data.synthetic import (
    COLORS,
    LETTER_ANSWER,
    POPE_CATEGORIES,
    SHAPES,
    SHORT_ANSWER,
    SYSTEM_PROMPT,
    generate_world,
    package_mirror,
)
from llava_core.io import read_json, read_jsonl

SMALL = {"n_pretrain": 60, "n_finetune": 200, "n_eval": 40}
EVAL_FIELDS = ("question_id", "image", "text", "category")


def file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, generate_world(root, seed=0, **SMALL)


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path, world: tuple[Path, dict]) -> None:
    root, summary = world
    again = generate_world(tmp_path / "a", seed=0, **SMALL)
    assert file_hashes(tmp_path / "a") == file_hashes(root)
    assert again == summary
    generate_world(tmp_path / "b", seed=1, **SMALL)
    other = file_hashes(tmp_path / "b")
    assert other != file_hashes(root)
    assert not set(other.values()) & {h for p, h in file_hashes(root).items() if p.endswith(".jpg")}


def test_regenerating_replaces_the_folders(tmp_path: Path) -> None:
    generate_world(tmp_path, seed=0, **SMALL)
    stale = tmp_path / "pretrain" / "stale.txt"
    stale.write_text("x")
    generate_world(tmp_path, seed=0, **SMALL)
    assert not stale.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_pretrain_is_lcs558k_format(world: tuple[Path, dict]) -> None:
    root, summary = world
    recs = read_llava_records(root / "pretrain/blip_laion_cc_sbu_558k.json")
    assert len(recs) == SMALL["n_pretrain"] == summary["counts"]["pretrain/blip_laion_cc_sbu_558k.json"]
    assert len({r["id"] for r in recs}) == len(recs)
    placements = Counter()
    for r in recs:
        assert re.fullmatch(r"\d{9}", r["id"]) and r["image"] == f"{r['id'][:5]}/{r['id']}.jpg"
        assert (root / "pretrain/images" / r["image"]).is_file()
        human, gpt = (t["value"] for t in r["conversations"])
        assert len(r["conversations"]) == 2 and human.count("<image>") == 1
        placements[human.startswith("<image>\n")] += 1
        assert "<image>" not in gpt and any(c in gpt for c in COLORS) and any(s in gpt for s in SHAPES)
    assert placements[True] and placements[False]  # <image> both before and after the prompt


def test_finetune_mixture(world: tuple[Path, dict]) -> None:
    root, summary = world
    recs = read_llava_records(root / "finetune/llava_v1_5_mix665k.json")
    assert len(recs) == SMALL["n_finetune"] and len({r["id"] for r in recs}) == len(recs)
    kinds = Counter()
    exist_answers = Counter()
    for r in recs:
        turns = r["conversations"]
        humans, gpts = [t["value"] for t in turns[0::2]], [t["value"] for t in turns[1::2]]
        assert len(humans) == len(gpts)
        if "image" not in r:
            kinds["text"] += 1
            assert not any("<image>" in v for v in humans + gpts)
            continue
        assert r["image"].startswith(("coco/train2017/", "gqa/images/"))
        assert (root / "finetune" / r["image"]).is_file()
        assert humans[0].count("<image>") == 1 and not any("<image>" in v for v in humans[1:] + gpts)
        if humans[0].endswith(SHORT_ANSWER):
            kinds["vqa"] += 1
            assert humans[0].startswith("<image>\n") and 2 <= len(humans) <= 3
            assert all(h.endswith("\n" + SHORT_ANSWER) for h in humans)
            assert all(a[0].isupper() and len(a.split()) == 1 for a in gpts)
            exist_answers.update(a for h, a in zip(humans, gpts, strict=True) if "Is there" in h)
        elif humans[0].endswith(LETTER_ANSWER):
            kinds["mc"] += 1
            assert re.search(r"\nA\. .+\nB\. .+\nC\. .+\nD\. .+\n", humans[0]) and gpts == [gpts[0]]
            assert gpts[0] in "ABCD"
        else:
            kinds["conv"] += 1
            assert all(a.endswith(".") and len(a.split()) > 4 for a in gpts)
    assert kinds == Counter(summary["finetune_kinds"])
    assert kinds["text"] >= 1 and kinds["mc"] and kinds["conv"] and kinds["vqa"] > len(recs) / 2
    assert set(exist_answers) == {"Yes", "No"} and abs(exist_answers["Yes"] - exist_answers["No"]) <= 1


def test_gqa_questions_and_ground_truth(world: tuple[Path, dict]) -> None:
    root, _ = world
    qs = read_questions(root / "eval/gqa/llava_gqa_testdev_balanced.jsonl", EVAL_FIELDS)
    truth = read_json(root / "eval/gqa/data/testdev_balanced_questions.json")
    assert [q["question_id"] for q in qs] == list(truth) and len(qs) == SMALL["n_eval"]
    palette = {name: np.array(rgb) for name, rgb in COLORS.items()}
    for q in qs:
        t = truth[q["question_id"]]
        assert isinstance(q["question_id"], str) and q["category"] == "default"
        assert q["text"] == f"{t['question']}\n{SHORT_ANSWER}" and t["answer"] in COLORS
        assert q["image"] == f"{t['imageId']}.jpg" and t["isBalanced"] and t["types"]["structural"]
        # the rendered shape really has the labelled colour (read at the middle of the shape)
        img = np.asarray(Image.open(root / "eval/gqa/data/images" / q["image"]), dtype=float)
        mask = np.abs(img - img[0, 0]).sum(-1) > 60
        assert mask.sum() > 0.1 * mask.size
        ys, xs = np.nonzero(mask)
        px = np.median(img[ys, xs], axis=0)
        assert min(palette, key=lambda c: np.abs(palette[c] - px).sum()) == t["answer"]
    counts = Counter(t["answer"] for t in truth.values())
    assert set(counts) == set(COLORS) and max(counts.values()) - min(counts.values()) <= 1


def test_pope_labels_align_with_questions(world: tuple[Path, dict]) -> None:
    root, summary = world
    qs = read_questions(root / "eval/pope/llava_pope_test.jsonl", EVAL_FIELDS)
    assert [q["category"] for q in qs] == sorted((q["category"] for q in qs), key=POPE_CATEGORIES.index)
    positives = []
    for cat in POPE_CATEGORIES:
        labels = read_jsonl(root / f"eval/pope/coco/coco_pope_{cat}.json")
        cat_qs = [q for q in qs if q["category"] == cat]
        n_labels = summary["counts"][f"eval/pope/coco/coco_pope_{cat}.json"]
        assert len(labels) == len(cat_qs) == SMALL["n_eval"] == n_labels
        for q, lab in zip(cat_qs, labels, strict=True):
            assert isinstance(q["question_id"], int) and q["image"] == lab["image"]
            assert q["text"] == f"{lab['text']}\n{SHORT_ANSWER}" and lab["label"] in ("yes", "no")
            assert re.fullmatch(r"COCO_val2014_\d{12}\.jpg", q["image"])
            assert (root / "eval/pope/val2014" / q["image"]).is_file()
        assert [lab["question_id"] for lab in labels] == list(range(1, len(labels) + 1))
        assert Counter(lab["label"] for lab in labels) == {"yes": len(labels) // 2, "no": len(labels) // 2}
        by_image = {}
        for lab in labels:
            by_image.setdefault(lab["image"], set()).add((lab["text"], lab["label"]))
        assert all(len(v) == 2 for v in by_image.values())  # one yes and one different no per image
        positives.append(sorted((lab["image"], lab["text"]) for lab in labels if lab["label"] == "yes"))
    assert positives[0] == positives[1] == positives[2]  # shared positives, as in real POPE


def test_scienceqa_letters_match_problems(world: tuple[Path, dict]) -> None:
    root, _ = world
    recs = read_llava_records(root / "eval/scienceqa/llava_test_CQM-A.json")
    problems = read_json(root / "eval/scienceqa/problems.json")
    splits = read_json(root / "eval/scienceqa/pid_splits.json")
    assert splits["test"] == [r["id"] for r in recs] == list(problems)
    with_image = 0
    for r in recs:
        p = problems[r["id"]]
        human, gpt = (t["value"] for t in r["conversations"])
        assert p["split"] == "test" and 2 <= len(p["choices"]) <= 4
        assert gpt == "ABCD"[p["answer"]]
        options = "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(p["choices"]))
        body = (f"Context: {p['hint']}\n" if p["hint"] else "") + f"{p['question']}\n{options}"
        if p["image"]:
            with_image += 1
            assert r["image"] == f"{r['id']}/image.png" and human == f"<image>\n{body}"
            assert (root / "eval/scienceqa/images/test" / r["image"]).is_file()
        else:
            assert "image" not in r and human == body
    assert 0 < with_image < len(recs)  # text-only items too, like the real file


def test_eval_images_are_not_training_images(world: tuple[Path, dict]) -> None:
    root, _ = world
    hashes = file_hashes(root)
    train = {h for p, h in hashes.items() if p.startswith(("pretrain/", "finetune/")) and p.endswith(".jpg")}
    evals = {h for p, h in hashes.items() if p.startswith("eval/") and p.endswith((".jpg", ".png"))}
    assert len(evals) == sum(p.endswith((".jpg", ".png")) for p in hashes if p.startswith("eval/"))
    assert train and evals and not train & evals


def test_corpus(world: tuple[Path, dict]) -> None:
    root, summary = world
    lines = (root / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert {SYSTEM_PROMPT, "USER", "ASSISTANT"} <= set(lines)
    corpus = summary["corpus"]
    assert len(corpus) == len(set(corpus)) and not any("<image>" in t for t in corpus)
    assert "What color is the shape?\n" + SHORT_ANSWER in corpus and "Yes" in corpus and "red" in corpus


def test_package_mirror(tmp_path: Path, world: tuple[Path, dict]) -> None:
    root, _ = world
    sources = package_mirror(root, tmp_path / "m1")
    assert [s["name"] for s in sources] == ["pretrain", "finetune", "eval"]
    assert read_json(tmp_path / "m1/sources.json") == sources
    again = package_mirror(root, tmp_path / "m2")
    assert [s["sha256"] for s in again] == [s["sha256"] for s in sources]
    for s in sources:
        path = Path(s["url"].removeprefix("file://"))
        assert s["url"].startswith("file:///") and path.stat().st_size == s["size"] and s["unpack"] == "tar"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == s["sha256"]
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            assert names == sorted(names) and all(m.mtime == 0 and m.uid == m.gid == 0 for m in members)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12
                tar.extractall(tmp_path / "unpacked" / s["dest"], filter="data")
            else:
                tar.extractall(tmp_path / "unpacked" / s["dest"])
    unpacked = file_hashes(tmp_path / "unpacked")
    assert unpacked == {p: h for p, h in file_hashes(root).items() if p != "corpus.txt"}
    assert "pretrain/blip_laion_cc_sbu_558k.json" in unpacked


def test_defaults_are_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    summary = generate_world(tmp_path)
    elapsed = time.perf_counter() - start
    counts = summary["counts"]
    assert counts["pretrain/blip_laion_cc_sbu_558k.json"] == 2000
    assert counts["finetune/llava_v1_5_mix665k.json"] == 3000
    assert counts["eval/pope/llava_pope_test.jsonl"] == 600 and counts["eval/scienceqa/problems.json"] == 200
    assert summary["finetune_kinds"]["text"] == 90  # ~3% text-only
    assert elapsed < 15, f"generation took {elapsed:.1f}s (budget 5 s on one core, 15 s here for slow CI)"
    json.dumps(summary)  # the summary is plain JSON
