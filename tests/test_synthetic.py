"""Tests for the synthetic tiny world: determinism, real formats, label alignment, mirror archives."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import string
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_core.data.formats import read_llava_records, read_questions
from llava_core.io import read_json, read_jsonl
from llava_core.synthetic import (
    COLORS,
    LETTER_ANSWER,
    POPE_CATEGORIES,
    SHAPES,
    SHORT_ANSWER,
    SYSTEM_PROMPT,
    generate_world,
    package_mirror,
)

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


def _mixture_kind(humans: list[str]) -> str:
    """Which task of the stage-2 mixture a record is, from its first prompt (``short``: VQAv2/GQA,
    POPE or MME, which share the short-answer suffix)."""
    from llava_core.evalkit.mmbench import CN_SUFFIX
    from llava_core.synthetic.tasks import UNANSWERABLE

    first = humans[0]
    if first.endswith((LETTER_ANSWER, CN_SUFFIX)):
        return "mc"
    if UNANSWERABLE in first:
        return "vizwiz"
    if "Reference OCR token:" in first:
        return "textvqa"
    return "short" if first.endswith(SHORT_ANSWER) else "conv"


def test_finetune_mixture(world: tuple[Path, dict]) -> None:
    """Every benchmark's prompt format is in the stage-2 mixture (tasks.py), with answers that
    depend on the image: yes/no balanced, option letters pointing at one of the listed options."""
    from llava_core.synthetic.training import MIXTURE

    root, summary = world
    recs = read_llava_records(root / "finetune/llava_v1_5_mix665k.json")
    assert len(recs) == SMALL["n_finetune"] and len({r["id"] for r in recs}) == len(recs)
    kinds = Counter()
    yes_no = Counter()
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
        kind = _mixture_kind([h.replace("<image>", "").strip() for h in humans])
        kinds[kind] += 1
        if kind == "conv":
            assert all(a.endswith(".") and len(a.split()) > 3 for a in gpts)
            continue
        assert humans[0].startswith("<image>\n")
        if kind == "mc":
            for h, a in zip(humans, gpts, strict=True):
                letters = re.findall(r"^([A-D])\. ", h, re.M)
                assert 2 <= len(letters) <= 4 and a in letters, (h, a)
        else:
            assert all(h.endswith("\n" + SHORT_ANSWER) for h in humans)
            assert all(len(a.split()) == 1 for a in gpts), gpts
            yes_no.update(a for a in gpts if a in ("Yes", "No"))
    made = Counter(summary["finetune_kinds"])
    short = made.pop("vqa") + made.pop("pope") + made.pop("mme")
    assert kinds == made + Counter(short=short)
    assert set(summary["finetune_kinds"]) == {*MIXTURE, "vqa"}
    # Each yes/no is drawn on its own: balanced within binomial noise (3 sigma).
    assert yes_no["Yes"] > 30 and abs(yes_no["Yes"] - yes_no["No"]) <= 3 * (yes_no.total() ** 0.5), yes_no


def test_finetune_records_share_images_and_agree_on_them(tmp_path: Path) -> None:
    """With ``records_per_image`` k, each image serves at most k records (most serve exactly k), every
    record about one image tells the same facts of it, a blank VizWiz image serves one record, and
    the yes/no turns of one record are independent (no "the second is the opposite" shortcut)."""
    from llava_core.synthetic.training import write_finetune

    with pytest.raises(ValueError, match="records_per_image"):
        write_finetune(tmp_path / "bad", 0, 16, 10, records_per_image=0)
    records, scenes, kinds = write_finetune(tmp_path, 7, 16, 400, records_per_image=3)
    assert len(records) == 400 and len({r["id"] for r in records}) == 400
    by_image: dict[str, list[dict]] = {}
    for r in records:
        if "image" in r:
            by_image.setdefault(r["image"], []).append(r)
    assert len(by_image) == len(scenes) and len(list(tmp_path.rglob("*.jpg"))) == len(scenes)
    uses = Counter(len(rs) for rs in by_image.values())
    assert max(uses) == 3 and uses[3] >= 0.9 * (sum(uses.values()) - uses[1]), uses
    facts = {"What color is the shape?": "color", "What shape is shown?": "shape",
             "What color is the background?": "background"}
    both_same = 0
    for image, rs in by_image.items():
        told: dict[str, set[str]] = {}
        for r in rs:
            turns = r["conversations"]
            for q, a in zip(turns[0::2], turns[1::2], strict=True):
                question = q["value"].replace("<image>", "").strip().split("\n")[0]
                if question in facts and q["value"].endswith(SHORT_ANSWER):  # not an option letter
                    told.setdefault(facts[question], set()).add(a["value"].lower())
            answers = [a["value"] for a in turns[1::2]]
            if "Is there" in turns[0]["value"] and len(answers) == 2 and answers[0] == answers[1] in ("Yes", "No"):
                both_same += 1
            if any(a["value"] == "Unanswerable" for a in turns[1::2]):
                assert len(rs) == 1, image  # a blank image is asked about once
        told.get("color", set()).discard("unanswerable")
        assert all(len(v) == 1 for v in told.values() if v), (image, told)
    assert both_same > 0  # two yes/no turns of one record may agree
    assert kinds["pope"] > 30


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
    assert [s["name"] for s in sources] == ["pretrain", "finetune", "eval", "instruct"]
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


def test_default_sizes(tmp_path: Path) -> None:
    """The default world's sizes (its generation time is part of scripts/bench_tiny_dag.py's figures)."""
    summary = generate_world(tmp_path)
    counts = summary["counts"]
    assert counts["pretrain/blip_laion_cc_sbu_558k.json"] == 2000
    assert counts["finetune/llava_v1_5_mix665k.json"] == 3000
    assert counts["eval/pope/llava_pope_test.jsonl"] == 600 and counts["eval/scienceqa/problems.json"] == 200
    assert summary["finetune_kinds"]["text"] == 90  # ~3% text-only
    assert summary["finetune_kinds"]["mc"] >= 600 and summary["finetune_kinds"]["pope"] >= 300
    json.dumps(summary)  # the summary is plain JSON


# ----------------------------------------------------------------------------------------------- all 12 benchmarks

ALL_BENCHMARKS = ["vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn",
                  "seed_bench", "llava_bench", "mm_vet"]
SERVER_SCORED = {"vqav2", "vizwiz"}  # EvalAI scores them (an upload file); the tiny world's annotations too
# The top score of each locally scored benchmark on the small world (MME: 200 per perception subtask).
TOP = {"vqav2": 100.0, "vizwiz": 100.0, "gqa": 100.0, "scienceqa": 100.0, "textvqa": 100.0, "pope": 100.0, "mme": 5 * 200.0, "mmbench": 100.0,
       "mmbench_cn": 100.0, "seed_bench": 100.0, "llava_bench": 100.0, "mm_vet": 100.0}


def perfect_answers(name: str, eval_root: Path, questions: list) -> list[str]:
    """Answer texts built from the synthetic ground truth files (read as each benchmark's scorer does)."""
    import pandas as pd

    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.evaluate.benchmarks.mme import official_question, split_question_id

    root = get_benchmark(name).root(eval_root)
    ids = [str(q.question_id) for q in questions]
    if name == "gqa":
        truth = read_json(root / "data/testdev_balanced_questions.json")
        return [truth[i]["answer"] for i in ids]
    if name == "pope":
        by_text = {}
        for cat in POPE_CATEGORIES:
            for row in read_jsonl(root / f"coco/coco_pope_{cat}.json"):
                by_text[(cat, row["image"], row["text"])] = row["label"]
        return [by_text[(q.extra.get("category") or _pope_cat(q), Path(q.image).name, q.text.split("\n")[0])]
                for q in questions]
    if name == "scienceqa":
        problems = read_json(root / "problems.json")
        return ["ABCDE"[problems[i]["answer"]] for i in ids]
    if name == "textvqa":
        data = read_json(root / "TextVQA_0.5.1_val.json")["data"]
        best = {(d["image_id"], d["question"].lower()): Counter(d["answers"]).most_common(1)[0][0] for d in data}
        return [best[(str(q.question_id), q.text.split("\n")[0].lower())] for q in questions]
    if name == "mme":
        out = []
        for q in questions:
            subtask, txt = split_question_id(str(q.question_id))
            folder = root / "MME_Benchmark_release_version" / subtask
            folder = folder / "questions_answers_YN" if (folder / "images").is_dir() else folder
            gt = dict(line.split("\t") for line in (folder / txt).read_text().splitlines())
            out.append(next(gt[k] for k in official_question(q.text) if k in gt))
        return out
    if name in ("mmbench", "mmbench_cn"):
        df = pd.read_table(next(root.glob("*.tsv")), dtype=str)
        letters = dict(zip(df["index"].astype(int), df["answer"], strict=True))
        return [letters[int(i)] for i in ids]
    if name == "seed_bench":
        return [{a["question_id"]: a["answer"] for a in read_json(root / "SEED-Bench.json")["questions"]}[i]
                for i in ids]
    if name == "llava_bench":
        refs = {str(a["question_id"]): a["text"] for a in read_jsonl(root / "answers_gpt4.jsonl")}
        return [refs[i] for i in ids]
    if name == "mm_vet":
        meta = read_json(root / "mm-vet.json")
        return [meta[f"v1_{i}"]["answer"].split("<OR>")[0].replace("<AND>", " and ") for i in ids]
    # vqav2, vizwiz: EvalAI keeps the real answers; the tiny world writes them in the VQA formats
    if name == "vqav2":
        ann = {str(a["question_id"]): a["answers"][0]["answer"]
               for a in read_json(root / "v2_mscoco_test-dev2015_annotations.json")["annotations"]}
        return [ann[i] for i in ids]
    ann = {a["image"]: a["answers"][0]["answer"] for a in read_json(root / "test_annotations.json")}
    return [ann[Path(q.image).name] for q in questions]


def _pope_cat(q) -> str:
    return {0: "adversarial", 1: "random", 2: "popular"}[int(q.question_id) // 10_000_000]


@pytest.mark.parametrize("name", ALL_BENCHMARKS)
def test_every_benchmark_loads_and_perfect_answers_score_top(tmp_path: Path, world: tuple[Path, dict],
                                                             name: str) -> None:
    from llava_core.config.schema import JudgeConfig
    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.evaluate.judge import judge_benchmark

    root, _ = world
    bench = get_benchmark(name)
    questions = bench.load_questions(root / "eval")
    assert 0 < len(questions) <= max(3 * SMALL["n_eval"], 80)
    for q in questions:
        assert q.image is None or Path(q.image).is_file(), (name, q.image)
    texts = perfect_answers(name, root / "eval", questions)
    answers = [{"question_id": q.question_id, "prompt": q.text, "text": t, "answer_id": f"a{i}"}
               for i, (q, t) in enumerate(zip(questions, texts, strict=True))]
    reviews = None
    if name in ("llava_bench", "mm_vet"):
        reviews, judge = judge_benchmark(JudgeConfig(kind="rule", passes=2), name, root / "eval", answers,
                                         tmp_path / "judge")
        assert judge.name == "rule-word-overlap" and judge.requests > 0
    res = bench.score(root / "eval", answers, out_dir=tmp_path, reviews=reviews)
    assert res.score == pytest.approx(TOP[name]), res
    if name in SERVER_SCORED:
        upload = read_json(res.upload)
        if name == "vqav2":  # covers the full test2015 file, test-dev answered
            full = read_jsonl(root / "eval/vqav2/llava_vqav2_mscoco_test2015.jsonl")
            assert [r["question_id"] for r in upload] == [q["question_id"] for q in full]
            assert sum(r["answer"] != "" for r in upload) == len(questions) < len(full)
        else:
            assert len(upload) == len(questions) and "unanswerable" in {r["answer"] for r in upload}


def test_small_benchmarks_follow_the_real_layouts(world: tuple[Path, dict]) -> None:
    root, summary = world
    ev = root / "eval"
    # MME: 2 questions per image, ground truth "question Please answer yes or no.<TAB>Yes|No".
    mme = read_jsonl(ev / "MME/llava_mme.jsonl")
    assert all(a["question_id"] == b["question_id"] for a, b in zip(mme[::2], mme[1::2], strict=True))
    assert (ev / "MME/MME_Benchmark_release_version/scene/questions_answers_YN").is_dir()
    assert list((ev / "MME/MME_Benchmark_release_version/existence").glob("*.txt"))
    # MMBench: circular copies at index + k * 1e6 pointing at the original's image.
    import pandas as pd

    df = pd.read_table(ev / "mmbench/mmbench_dev_20230712.tsv", dtype=str)
    idx = df["index"].astype(int)
    assert (idx >= 1_000_000).any() and set(idx % 1_000_000) == set(idx[idx < 1_000_000])
    assert df.loc[idx >= 1_000_000, "image"].str.isdigit().all()
    cn = pd.read_table(ev / "mmbench_cn/mmbench_dev_cn_20231003.tsv", dtype=str)
    assert cn["question"].str.contains("形状").all()
    # SEED: image and video (middle frame) questions with their type names.
    seed = read_json(ev / "seed_bench/SEED-Bench.json")
    assert {q["data_type"] for q in seed["questions"]} == {"image", "video"}
    assert seed["question_type"]["Action Recognition"] == 10
    # TextVQA: OCR-token prompts, 10 answers each.
    tv = read_jsonl(ev / "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    assert all("\nReference OCR token: " in q["text"] for q in tv)
    assert all(len(d["answers"]) == 10 for d in read_json(ev / "textvqa/TextVQA_0.5.1_val.json")["data"])
    # VQAv2: test-dev is a subset of test2015.
    dev = {q["question_id"] for q in read_jsonl(ev / "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl")}
    full = {q["question_id"] for q in read_jsonl(ev / "vqav2/llava_vqav2_mscoco_test2015.jsonl")}
    assert dev < full
    # LLaVA-Bench: a context per image and a reference per question; MM-Vet metadata per question.
    lb = read_jsonl(ev / "llava-bench-in-the-wild/questions.jsonl")
    assert {q["category"] for q in lb} == {"conv", "detail", "complex"}
    assert {c["image"] for c in read_jsonl(ev / "llava-bench-in-the-wild/context.jsonl")} == {q["image"] for q in lb}
    meta = read_json(ev / "mm-vet/mm-vet.json")
    assert set(meta) == {f"v1_{q['question_id']}" for q in read_jsonl(ev / "mm-vet/llava-mm-vet.jsonl")}
    assert summary["counts"]["eval/MME/llava_mme.jsonl"] == len(mme)


# ----------------------------------------------------------------------------------------------- declared files

SYNTHETIC = Path(__file__).resolve().parents[1] / "llava_core" / "synthetic"


def declared_paths(bench, eval_root: Path) -> dict[Path, bool]:
    """Every file (False) and folder (True) ``bench`` declares, placeholders filled (POPE's splits)."""
    out = {}
    for role, kit in bench.files.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(kit.path) if f}
        assert fields <= {"split"}, (bench.name, role, fields)
        for split in POPE_CATEGORIES if fields else [None]:
            out[bench.path(eval_root, role, **({"split": split} if fields else {}))] = kit.folder
    return out


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A world of its own: loading MMBench questions decodes images into its folder."""
    root = tmp_path_factory.mktemp("tiny_world")
    return root, generate_world(root, seed=3, n_pretrain=10, n_finetune=20, n_eval=24)


@pytest.mark.parametrize("name", ALL_BENCHMARKS)
def test_writers_write_exactly_the_declared_files(tiny_world: tuple[Path, dict], name: str) -> None:
    from llava_core.evaluate.benchmarks import get_benchmark

    root, summary = tiny_world
    bench, eval_root = get_benchmark(name), root / "eval"
    declared = declared_paths(bench, eval_root)
    for path, folder in declared.items():
        assert path.is_dir() if folder else path.is_file(), path
    folders = [p for p, folder in declared.items() if folder]
    written = [p for p in bench.root(eval_root).rglob("*") if p.is_file()]
    undeclared = [p for p in written if p not in declared and not any(f in p.parents for f in folders)]
    assert written and not undeclared
    counted = {root / k for k in summary["counts"] if k.startswith(f"eval/{bench.folder}/")}
    assert counted and counted <= {p for p, folder in declared.items() if not folder}
    # read back through the benchmark class: every question, every image where it says
    questions = bench.load_questions(eval_root)
    assert questions and all(q.image is None or Path(q.image).is_file() for q in questions)


def test_eval_root_holds_one_folder_per_benchmark(tiny_world: tuple[Path, dict]) -> None:
    from llava_core.evaluate.benchmarks import BENCHMARKS

    root, _ = tiny_world
    from llava_core.evalkit import CHANCE_FILE

    assert {p.name for p in (root / "eval").iterdir()} == {b.folder for b in BENCHMARKS.values()} | {CHANCE_FILE}


@pytest.mark.parametrize("name", ALL_BENCHMARKS)
def test_the_filter_finds_the_images_the_loader_asks_about(tiny_world: tuple[Path, dict], name: str) -> None:
    """The eval-overlap index reads a benchmark's images through its kit alone
    (prepare/eval_images.py); they are exactly the images its loader gives the model."""
    from llava_core.evalkit import kit
    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.prepare.eval_images import eval_images

    root, _ = tiny_world
    loaded = list(dict.fromkeys(q.image for q in get_benchmark(name).load_questions(root / "eval") if q.image))
    assert loaded and eval_images(kit(name), root / "eval") == loaded


def _literals(path: Path) -> list[str]:
    """The string constants of a module, docstrings left out (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_no_benchmark_file_name_is_spelled_in_the_synthetic_package() -> None:
    """The writers take every benchmark file name from the kits (llava_core/evalkit)."""
    from llava_core.evaluate.benchmarks import BENCHMARKS

    sources = sorted(SYNTHETIC.rglob("*.py"))
    for bench in BENCHMARKS.values():
        writer = SYNTHETIC / "benchmarks" / f"{type(bench).__module__.rsplit('.', 1)[1]}.py"
        assert writer in sources
        for kit in bench.files.values():
            name = kit.path.split("{")[0]
            if kit.folder:  # "images", "test": plain words elsewhere (and role names), so only as a path
                hits = [s for s in _literals(writer) if s not in bench.files
                        and (s == name or s.startswith(f"{name}/") or f"/{name}" in s)]
            else:
                hits = [(p.name, s) for p in sources for s in _literals(p) if name in s]
            assert not hits, (bench.name, kit.path, hits)


# ----------------------------------------------------------------------------------------------- chance levels

def blind_answer(name: str, text: str, rng) -> str:
    """A guess that knows the answer format but not the image: an option letter, yes/no, one of
    the OCR tokens, or a value of the kind the question asks about (colour, shape, background;
    VizWiz also allows "unanswerable")."""
    from llava_core.synthetic import BACKGROUNDS

    if name in ("scienceqa", "mmbench", "mmbench_cn", "seed_bench"):
        return rng.choice(re.findall(r"^([A-E])\. ", text, re.M))
    if name == "pope":
        return "Yes"  # the best constant answer (F1 2/3 on half "yes"), above a uniform guess's 1/2
    if name == "mme":
        return rng.choice(("Yes", "No"))
    if name == "textvqa":
        return rng.choice(re.search(r"Reference OCR token: (.*)", text).group(1).split(", ")).lower()
    question = text.split("\n")[0]
    if "left or on the right" in question:
        pool = ["left", "right"]
    elif question.startswith("Is "):
        pool = ["yes", "no"]
    elif "background" in question:
        pool = list(BACKGROUNDS)
    elif "shape" in question and "color" not in question:
        pool = list(SHAPES)
    elif "color and the shape" in question:
        return f"{rng.choice(list(COLORS))} {rng.choice(list(SHAPES))}"
    else:
        pool = list(COLORS)
    if name == "vizwiz" and "background" not in question:
        pool.append("unanswerable")
    return rng.choice(pool)


@pytest.mark.parametrize("name", ALL_BENCHMARKS)
def test_declared_chance_is_what_a_blind_answerer_scores(tmp_path: Path, world: tuple[Path, dict], name: str) -> None:
    """Each writer's chance level (eval/chance.json, read by Benchmark.chance_level) equals the mean
    score, by the benchmark's own scorer (and rule judge), of answers guessed without the image."""
    import random

    from llava_core.config.schema import JudgeConfig
    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.evaluate.judge import judge_benchmark

    root, _ = world
    bench = get_benchmark(name)
    declared = bench.chance_level(root / "eval")
    assert declared == read_json(root / "eval" / "chance.json")[name]
    top = TOP.get(name, 100.0)
    assert 0 < declared < 0.75 * top, (name, declared)
    questions = bench.load_questions(root / "eval")
    rng = random.Random(0)
    if name == "llava_bench":  # a format-perfect blind answer: another image's reference answer
        refs = read_jsonl(bench.path(root / "eval", "references"))
        draws = [[refs[(i + 3) % len(refs)]["text"] for i in range(len(refs))]]
    else:
        draws = [[blind_answer(name, q.text, rng) for q in questions] for _ in range(1 if name == "pope" else 120)]
    scores = []
    for k, texts in enumerate(draws[:40] if bench.judged else draws):
        answers = [{"question_id": q.question_id, "prompt": q.text, "text": t, "answer_id": f"a{i}"}
                   for i, (q, t) in enumerate(zip(questions, texts, strict=True))]
        reviews = None
        if bench.judged:
            reviews, _ = judge_benchmark(JudgeConfig(kind="rule", passes=1), name, root / "eval", answers,
                                         tmp_path / f"judge{k}")
        scores.append(bench.score(root / "eval", answers, out_dir=tmp_path, reviews=reviews).score)
    measured = sum(scores) / len(scores)
    assert measured == pytest.approx(declared, abs=0.04 * top), (name, measured, declared)
