"""The synthetic "tiny world": coloured shapes, written in the real LLaVA-1.5 file formats.

Each image is a plain muted background with one large shape (circle, square, triangle or cross)
in one of 8 well-separated colours, with mild colour jitter and pixel noise. :func:`generate_world`
writes a stage-1 set (LCS-558K layout), a stage-2 mixture (mix665k layout) and eval sets for all
12 benchmarks of the LLaVA-1.5 table in the official eval-kit layouts that
:mod:`llava_core.evaluate.benchmarks` reads (GQA, POPE and ScienceQA with ``n_eval`` questions; the
other nine small), all deterministic in ``seed``.
:func:`package_mirror` packs them into reproducible tar archives with a ``sources.json`` manifest.

Every split draws from its own random streams, so eval images are never training images.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from llava_core.data.formats import IMAGE_TOKEN, write_llava_records
from llava_core.io import atomic_dir, atomic_write, sha256_file, write_json, write_jsonl

SYSTEM_PROMPT = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")
SHORT_ANSWER = "Answer the question using a single word or phrase."
LETTER_ANSWER = "Answer with the option's letter from the given choices directly."

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (240, 220, 30),
    "purple": (140, 40, 180), "orange": (250, 140, 20), "white": (250, 250, 250), "black": (10, 10, 10),
}
# Muted backgrounds, far from every shape colour (so the shape is always visible).
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128), "tan": (190, 170, 135), "brown": (110, 75, 50), "teal": (40, 110, 115),
}
SHAPES = ("circle", "square", "triangle", "cross")

PRETRAIN_PROMPTS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Relay a brief, clear account of the picture shown.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
)
CAPTIONS = (
    "{a_color} {shape} on a {bg} background",
    "{a_size} {color} {shape} {where}",
    "{color} {shape} against a plain {bg} backdrop",
    "a simple picture of {a_color} {shape}",
    "{a_color} {shape} {where} on a {bg} background",
)
DETAIL_PROMPTS = ("Describe the image.", "Describe the image in detail.", "What do you see in this picture?",
                  "Explain the visual content of the image.")
OPPOSITES = {"big": "small", "hot": "cold", "up": "down", "light": "dark", "fast": "slow", "old": "new",
             "open": "closed", "happy": "sad"}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")

PRETRAIN_JSON = "pretrain/blip_laion_cc_sbu_558k.json"
FINETUNE_JSON = "finetune/llava_v1_5_mix665k.json"
GQA_QUESTIONS = "eval/gqa/llava_gqa_testdev_balanced.jsonl"
GQA_ANSWERS = "eval/gqa/data/testdev_balanced_questions.json"
POPE_QUESTIONS = "eval/pope/llava_pope_test.jsonl"
POPE_CATEGORIES = ("adversarial", "popular", "random")  # file order of the real llava_pope_test.jsonl
POPE_ID_OFFSET = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}  # as the real file
SQA_QUESTIONS = "eval/scienceqa/llava_test_CQM-A.json"
SQA_PROBLEMS = "eval/scienceqa/problems.json"
SQA_SPLITS = "eval/scienceqa/pid_splits.json"
MIRROR_PARTS = ("pretrain", "finetune", "eval")


@dataclass(frozen=True)
class Scene:
    """One image's content; positions and size are fractions of the image side."""

    shape: str
    color: str
    background: str
    cx: float
    cy: float
    size: float

    @property
    def where(self) -> str:
        """A phrase for the shape's position, e.g. ``"in the top left corner"``."""
        h = "left" if self.cx < 0.42 else "right" if self.cx > 0.58 else ""
        v = "top" if self.cy < 0.42 else "bottom" if self.cy > 0.58 else ""
        if h and v:
            return f"in the {v} {h} corner"
        if h:
            return f"on the {h} side"
        return f"at the {v}" if v else "in the center"

    @property
    def size_word(self) -> str:
        """``"large"`` or ``"medium-sized"``."""
        return "large" if self.size >= 0.75 else "medium-sized"


def _streams(seed: int, name: str) -> tuple[random.Random, np.random.Generator]:
    """Independent Python and numpy RNGs for one named stream of one seed."""
    h = int.from_bytes(hashlib.sha256(f"llava_core.synthetic:{seed}:{name}".encode()).digest()[:8], "big")
    return random.Random(h), np.random.default_rng(h)


def sample_scene(rng: random.Random, color: str | None = None, shape: str | None = None) -> Scene:
    """Draw a random scene (optionally with a fixed colour or shape)."""
    shape = shape or rng.choice(SHAPES)
    color = color or rng.choice(list(COLORS))
    background = rng.choice(list(BACKGROUNDS))
    size = rng.uniform(0.6, 0.9)  # large shapes: a frozen random vision tower must still see them
    cx, cy = rng.uniform(size / 2, 1 - size / 2), rng.uniform(size / 2, 1 - size / 2)
    return Scene(shape, color, background, round(cx, 4), round(cy, 4), round(size, 4))


def render(scene: Scene, image_size: int, nrng: np.random.Generator) -> np.ndarray:
    """Draw ``scene`` as an ``(image_size, image_size, 3)`` uint8 array with jitter and noise."""
    c = (np.arange(image_size) + 0.5) / image_size
    dx, dy = c[None, :] - scene.cx, c[:, None] - scene.cy
    r = scene.size / 2
    if scene.shape == "circle":
        mask = dx**2 + dy**2 <= r**2
    elif scene.shape == "square":
        mask = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    elif scene.shape == "triangle":  # apex up, base at the bottom
        mask = (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    elif scene.shape == "cross":
        arm = r / 2
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    else:
        raise ValueError(f"unknown shape {scene.shape!r}")
    bg = np.asarray(BACKGROUNDS[scene.background], np.float32) + nrng.integers(-8, 9, 3)
    fg = np.asarray(COLORS[scene.color], np.float32) + nrng.integers(-12, 13, 3)
    img = np.where(mask[..., None], fg, bg)
    img += 6.0 * nrng.standard_normal((image_size, image_size, 3), dtype=np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _save(arr: np.ndarray, path: Path) -> None:
    """Save as JPEG quality 95, or PNG when the name ends in ``.png``."""
    img = Image.fromarray(arr, "RGB")
    if path.suffix == ".png":
        img.save(path, format="PNG")
    else:
        img.save(path, format="JPEG", quality=95)


def _a(word: str) -> str:
    """``word`` with its indefinite article: ``"a red"``, ``"an orange"``."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _caption(rng: random.Random, s: Scene) -> str:
    return rng.choice(CAPTIONS).format(a_color=_a(s.color), color=s.color, shape=s.shape, bg=s.background,
                                       a_size=_a(s.size_word), where=s.where)


def _with_image(rng: random.Random, text: str) -> str:
    """Put ``<image>`` before or after the instruction, as LLaVA's data does."""
    return f"{IMAGE_TOKEN}\n{text}" if rng.random() < 0.5 else f"{text}\n{IMAGE_TOKEN}"


def _options(choices: list[str]) -> str:
    return "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(choices))


def _distractor(rng: random.Random, s: Scene, mode: str) -> tuple[str, str]:
    """A (colour, shape) pair absent from ``s``; ``mode`` is "color", "shape", "both" or "any"."""
    other_c = [c for c in COLORS if c != s.color]
    other_s = [x for x in SHAPES if x != s.shape]
    if mode == "any":
        return rng.choice([(c, x) for c in COLORS for x in SHAPES if (c, x) != (s.color, s.shape)])
    color = rng.choice(other_c) if mode in ("color", "both") else s.color
    shape = rng.choice(other_s) if mode in ("shape", "both") else s.shape
    return color, shape


def _unique_ints(rng: random.Random, n: int, lo: int, hi: int) -> list[int]:
    return rng.sample(range(lo, hi), n)


# ----------------------------------------------------------------------------------------------- stage 1


def _pretrain(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], list[Scene]]:
    rng, nrng = _streams(seed, "pretrain")
    records, scenes, made = [], [], set()
    for num in _unique_ints(rng, n, 0, 10_000_000):
        rid = f"{num:09d}"
        rel = f"{rid[:5]}/{rid}.jpg"
        s = sample_scene(rng)
        if rid[:5] not in made:
            (root / "images" / rid[:5]).mkdir(parents=True, exist_ok=True)
            made.add(rid[:5])
        _save(render(s, image_size, nrng), root / "images" / rel)
        records.append({"id": rid, "image": rel, "conversations": [
            {"from": "human", "value": _with_image(rng, rng.choice(PRETRAIN_PROMPTS))},
            {"from": "gpt", "value": _caption(rng, s)}]})
        scenes.append(s)
    write_llava_records(root / "blip_laion_cc_sbu_558k.json", records)
    return records, scenes


# ----------------------------------------------------------------------------------------------- stage 2


class _YesNo:
    """Alternates yes/no so the existence questions are exactly balanced."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return self.count % 2 == 1


def _vqa_turns(rng: random.Random, s: Scene, yes_no: _YesNo) -> list[tuple[str, str]]:
    def color_q() -> tuple[str, str]:
        q = "What color is the shape?" if rng.random() < 0.5 else f"What color is the {s.shape}?"
        return q, s.color.capitalize()

    def shape_q() -> tuple[str, str]:
        return rng.choice(("What shape is shown?", "Which shape is in the image?")), s.shape.capitalize()

    def exist_q() -> tuple[str, str]:
        if yes_no():
            return f"Is there {_a(s.color)} {s.shape} in the image?", "Yes"
        color, shape = _distractor(rng, s, rng.choice(("color", "shape", "both")))
        return f"Is there {_a(color)} {shape} in the image?", "No"

    def background_q() -> tuple[str, str]:
        return "What color is the background?", s.background.capitalize()

    makers: list[Callable[[], tuple[str, str]]] = [color_q, shape_q, exist_q, background_q]
    return [make() for make in rng.sample(makers, rng.choice((2, 3)))]


def _mc_turn(rng: random.Random, s: Scene) -> tuple[str, str]:
    kind = rng.choice(("color", "shape", "background"))
    if kind == "color":
        q, answer, pool = f"What color is the {s.shape}?", s.color, list(COLORS)
    elif kind == "shape":
        q, answer, pool = "Which shape can be seen in the picture?", s.shape, list(SHAPES)
    else:
        q, answer, pool = "What color is the background of the image?", s.background, list(BACKGROUNDS)
    choices = [answer, *rng.sample([p for p in pool if p != answer], 3)]
    rng.shuffle(choices)
    return f"{q}\n{_options(choices)}\n{LETTER_ANSWER}", chr(65 + choices.index(answer))


def _conv_turns(rng: random.Random, s: Scene) -> list[tuple[str, str]]:
    if rng.random() < 0.5:  # detailed description
        ans = (f"The image shows {_a(s.size_word)} {s.color} {s.shape} on a plain {s.background} background. "
               f"The {s.shape} is {s.where} of the picture, and nothing else is in the scene.")
        return [(rng.choice(DETAIL_PROMPTS), ans)]
    pool = [
        (f"What is the color of the {s.shape} in the image?", f"The {s.shape} in the image is {s.color}."),
        ("What kind of shape is in the picture?", f"The picture contains a single {s.color} {s.shape}."),
        (f"Where is the {s.shape} located?", f"The {s.shape} is located {s.where} of the image."),
        ("What does the background look like?", f"The background is a plain, uniform {s.background} color."),
    ]
    return rng.sample(pool, rng.choice((2, 3)))


def _text_only_turns(rng: random.Random) -> list[tuple[str, str]]:
    turns = []
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.randrange(4)
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        if kind == 0:
            turns.append((f"What is {a} plus {b}?", f"{a} plus {b} equals {a + b}."))
        elif kind == 1:
            turns.append((f"What is {a} times {b}?", f"{a} times {b} equals {a * b}."))
        elif kind == 2:
            word = rng.choice(list(OPPOSITES))
            turns.append((f"What is the opposite of {word}?",
                          f"The opposite of {word} is {OPPOSITES[word]}."))
        else:
            shape, sides = rng.choice((("square", 4), ("triangle", 3)))
            turns.append((f"How many sides does a {shape} have?",
                          f"A {shape} has {NUMBER_WORDS[sides]} sides."))
    return turns


def _conversation(turns: list[tuple[str, str]]) -> list[dict]:
    conv = []
    for q, a in turns:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return conv


def _finetune(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], list[Scene], Counter]:
    rng, nrng = _streams(seed, "finetune")
    n_text = max(1, round(0.03 * n)) if n else 0
    n_mc, n_conv = round(0.15 * n), round(0.17 * n)
    kinds = ["text"] * n_text + ["mc"] * n_mc + ["conv"] * n_conv
    kinds += ["vqa"] * max(0, n - len(kinds))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    numbers = iter(_unique_ints(rng, n, 1, 600_000))
    yes_no = _YesNo()
    records, scenes, made = [], [], set()
    for kind in kinds:
        num = next(numbers)
        if kind == "text":
            rid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                          for _ in range(7)) + "_0"
            records.append({"id": rid, "conversations": _conversation(_text_only_turns(rng))})
            continue
        s = sample_scene(rng)
        if kind == "vqa":
            turns = [(f"{q}\n{SHORT_ANSWER}", a) for q, a in _vqa_turns(rng, s, yes_no)]
            turns[0] = (f"{IMAGE_TOKEN}\n{turns[0][0]}", turns[0][1])
        elif kind == "mc":
            q, a = _mc_turn(rng, s)
            turns = [(f"{IMAGE_TOKEN}\n{q}", a)]
        else:
            turns = _conv_turns(rng, s)
            turns[0] = (_with_image(rng, turns[0][0]), turns[0][1])
        # VQA records alternate between the GQA and COCO image folders, as in the real mixture.
        if kind == "vqa" and num % 2:
            rid, rel = str(num), f"gqa/images/{num}.jpg"
        else:
            rid = f"{num:012d}"
            rel = f"coco/train2017/{rid}.jpg"
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        _save(render(s, image_size, nrng), path)
        records.append({"id": rid, "image": rel, "conversations": _conversation(turns)})
        scenes.append(s)
    write_llava_records(root / "llava_v1_5_mix665k.json", records)
    return records, scenes, Counter(kinds)


# ----------------------------------------------------------------------------------------------- eval


def _balanced(rng: random.Random, values: list[str], n: int) -> list[str]:
    """``n`` values cycling through ``values`` evenly, shuffled."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out


def _gqa(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], dict]:
    rng, nrng = _streams(seed, "eval-gqa")
    (root / "data" / "images").mkdir(parents=True, exist_ok=True)
    qids = _unique_ints(rng, n, 200_000_000, 210_000_000)
    image_nums = _unique_ints(rng, n, 100_000, 600_000)
    questions, truth = [], {}
    for qid_num, img_num, color in zip(qids, image_nums, _balanced(rng, list(COLORS), n), strict=True):
        s = sample_scene(rng, color=color)
        qid, image_id = str(qid_num), f"n{img_num}"
        _save(render(s, image_size, nrng), root / "data" / "images" / f"{image_id}.jpg")
        q = "What color is the shape?"
        questions.append({"question_id": qid, "image": f"{image_id}.jpg", "text": f"{q}\n{SHORT_ANSWER}",
                          "category": "default"})
        obj = f"{s.shape} ({img_num % 1000 + 1000})"
        truth[qid] = {
            "semantic": [{"operation": "select", "dependencies": [], "argument": obj},
                         {"operation": "query", "dependencies": [0], "argument": "color"}],
            "entailed": [], "equivalent": [qid], "question": q, "imageId": image_id, "isBalanced": True,
            "groups": {"global": "color", "local": "10q-shape_color"}, "answer": s.color,
            "semanticStr": f"select: {obj}->query: color [0]",
            "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
            "types": {"detailed": "directWhat", "semantic": "attr", "structural": "query"},
            "fullAnswer": f"The {s.shape} is {s.color}.",
        }
    write_jsonl(root / "llava_gqa_testdev_balanced.jsonl", questions)
    write_json(root / "data" / "testdev_balanced_questions.json", truth)
    return questions, truth


def _pope(root: Path, seed: int, image_size: int, n: int, popular: list[tuple[str, str]]
          ) -> tuple[list[dict], dict[str, list[dict]]]:
    """``n`` questions per category (1 yes + 1 no per image); the yes questions are shared."""
    rng, nrng = _streams(seed, "eval-pope")
    (root / "val2014").mkdir(parents=True, exist_ok=True)
    n_images = n // 2
    images = []
    for num in _unique_ints(rng, n_images, 1, 600_000):
        s = sample_scene(rng)
        name = f"COCO_val2014_{num:012d}.jpg"
        _save(render(s, image_size, nrng), root / "val2014" / name)
        images.append((name, s))
    questions, labels = [], {}
    for cat in POPE_CATEGORIES:
        rows = []
        for name, s in images:
            if cat == "random":
                neg = _distractor(rng, s, "any")
            elif cat == "adversarial":  # differs in one attribute only
                neg = _distractor(rng, s, rng.choice(("color", "shape")))
            else:  # popular: the most frequent training pairs that are absent here
                neg = rng.choice([p for p in popular[:4] if p != (s.color, s.shape)][:3])
            pair = [((s.color, s.shape), "yes"), (neg, "no")]
            rng.shuffle(pair)
            for (color, shape), label in pair:
                rows.append({"question_id": len(rows) + 1, "image": name,
                             "text": f"Is there {_a(color)} {shape} in the image?", "label": label})
        labels[cat] = rows
        questions += [{"question_id": POPE_ID_OFFSET[cat] + r["question_id"], "image": r["image"],
                       "text": f"{r['text']}\n{SHORT_ANSWER}", "category": cat} for r in rows]
        write_jsonl(root / "coco" / f"coco_pope_{cat}.json", rows)
    write_jsonl(root / "llava_pope_test.jsonl", questions)
    return questions, labels


def _scienceqa(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], dict]:
    """``n`` multiple-choice problems; about 20% are text-only, as in the real test split."""
    rng, nrng = _streams(seed, "eval-scienceqa")
    pids = sorted(_unique_ints(rng, n, 1, 25_000))
    n_text = max(1, n // 5) if n else 0
    text_only = set(rng.sample(pids, n_text))
    records, problems = [], {}
    for pid_num in pids:
        pid = str(pid_num)
        if pid_num in text_only:
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            question, answer, hint = f"What is {a} plus {b}?", str(a + b), ""
            pool = [str(v) for v in range(2, 19)]
            topic, image = "arithmetic", None
        else:
            s = sample_scene(rng)
            if rng.random() < 0.5:
                question, answer, pool = "Which shape is shown?", s.shape, list(SHAPES)
            else:
                question, answer, pool = "Which color is the shape?", s.color, list(COLORS)
            hint = rng.choice(("", "", "The picture shows one object on a plain background."))
            topic, image = "shapes", "image.png"
            (root / "images" / "test" / pid).mkdir(parents=True, exist_ok=True)
            _save(render(s, image_size, nrng), root / "images" / "test" / pid / "image.png")
        choices = [answer, *rng.sample([p for p in pool if p != answer], rng.choice((1, 2, 3)))]
        rng.shuffle(choices)
        idx = choices.index(answer)
        prompt = (f"Context: {hint}\n" if hint else "") + f"{question}\n{_options(choices)}"
        rec: dict = {"id": pid}
        if image:
            rec["image"] = f"{pid}/image.png"
            prompt = f"{IMAGE_TOKEN}\n{prompt}"
        rec["conversations"] = [{"from": "human", "value": prompt}, {"from": "gpt", "value": chr(65 + idx)}]
        records.append(rec)
        problems[pid] = {"question": question, "choices": choices, "answer": idx, "hint": hint,
                         "image": image,
                         "task": "closed choice", "grade": "grade1", "subject": "natural science",
                         "topic": topic, "category": topic.capitalize(), "skill": f"Identify {topic}",
                         "lecture": "", "solution": f"The answer is {answer}.", "split": "test"}
    write_json(root / "llava_test_CQM-A.json", records, indent=1)
    write_json(root / "problems.json", problems)
    splits = {k: [] for k in ("train", "val", "minitrain", "minival", "trainval")}
    splits.update(test=[str(p) for p in pids], minitest=[str(p) for p in pids])
    write_json(root / "pid_splits.json", splits)
    return records, problems


# ----------------------------------------------------------------------------------------------- eval: the other 9
# Small sets (at most ``SMALL_EVAL`` questions each, fewer when ``n_eval`` is smaller) in the layouts
# that the benchmark modules read; every question is about the shape, its colour, position or the
# background, so a trained tiny model can answer some of them.

SMALL_EVAL = 48
VIZWIZ_SUFFIX = "When the provided information is insufficient, respond with 'Unanswerable'."
CN_LETTER_ANSWER = "请直接回答选项字母。"
COLORS_CN = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色", "orange": "橙色",
             "white": "白色", "black": "黑色"}
SHAPES_CN = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "cross": "十字形"}
SEED_TYPES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3, "Instance Location": 4,
              "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
              "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11,
              "Procedure Understanding": 12}
MME_DIR = "eval/MME/MME_Benchmark_release_version"
VQAV2_QUESTIONS = "eval/vqav2/llava_vqav2_mscoco_test-dev2015.jsonl"
VQAV2_FULL = "eval/vqav2/llava_vqav2_mscoco_test2015.jsonl"
VIZWIZ_QUESTIONS = "eval/vizwiz/llava_test.jsonl"
TEXTVQA_QUESTIONS = "eval/textvqa/llava_textvqa_val_v051_ocr.jsonl"
TEXTVQA_ANNOTATIONS = "eval/textvqa/TextVQA_0.5.1_val.json"
MME_QUESTIONS = "eval/MME/llava_mme.jsonl"
MMBENCH_TSV = "eval/mmbench/mmbench_dev_20230712.tsv"
MMBENCH_CN_TSV = "eval/mmbench_cn/mmbench_dev_cn_20231003.tsv"
SEED_QUESTIONS = "eval/seed_bench/llava-seed-bench.jsonl"
SEED_ANNOTATIONS = "eval/seed_bench/SEED-Bench.json"
LLAVA_BENCH_QUESTIONS = "eval/llava-bench-in-the-wild/questions.jsonl"
LLAVA_BENCH_CONTEXT = "eval/llava-bench-in-the-wild/context.jsonl"
LLAVA_BENCH_REFERENCES = "eval/llava-bench-in-the-wild/answers_gpt4.jsonl"
MM_VET_QUESTIONS = "eval/mm-vet/llava-mm-vet.jsonl"
MM_VET_METADATA = "eval/mm-vet/mm-vet.json"


def _short_qa(rng: random.Random, s: Scene) -> tuple[str, str]:
    """A short-answer question about ``s`` and its one-word answer, as in the stage-2 VQA data."""
    kind = rng.choice(("color", "color", "shape", "background", "exist"))
    if kind == "color":
        return rng.choice(("What color is the shape?", f"What color is the {s.shape}?")), s.color
    if kind == "shape":
        return rng.choice(("What shape is shown?", "Which shape is in the image?")), s.shape
    if kind == "background":
        return "What color is the background?", s.background
    if rng.random() < 0.5:
        return f"Is there {_a(s.color)} {s.shape} in the image?", "yes"
    color, shape = _distractor(rng, s, rng.choice(("color", "shape")))
    return f"Is there {_a(color)} {shape} in the image?", "no"


def _vqav2(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], list[dict]]:
    """test-dev questions (COCO test2015 images) and the full test2015 file, a superset whose extra
    questions are never asked but must appear (unanswered) in the EvalAI upload."""
    rng, nrng = _streams(seed, "eval-vqav2")
    (root / "test2015").mkdir(parents=True, exist_ok=True)
    dev, extra = [], []
    for num in _unique_ints(rng, n, 1, 600_000):
        s = sample_scene(rng)
        name = f"COCO_test2015_{num:012d}.jpg"
        _save(render(s, image_size, nrng), root / "test2015" / name)
        (q1, _), (q2, _) = _short_qa(rng, s), _short_qa(rng, s)
        dev.append({"question_id": num * 1000, "image": name, "text": f"{q1}\n{SHORT_ANSWER}", "category": "default"})
        if q2 != q1:  # a test-standard question on the same image
            extra.append({"question_id": num * 1000 + 1, "image": name, "text": f"{q2}\n{SHORT_ANSWER}",
                          "category": "default"})
    full = sorted(dev + extra, key=lambda r: r["question_id"])
    write_jsonl(root / "llava_vqav2_mscoco_test-dev2015.jsonl", dev)
    write_jsonl(root / "llava_vqav2_mscoco_test2015.jsonl", full)
    return dev, full


def _vizwiz(root: Path, seed: int, image_size: int, n: int) -> list[dict]:
    rng, nrng = _streams(seed, "eval-vizwiz")
    (root / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        s = sample_scene(rng)
        name = f"VizWiz_test_{i:08d}.jpg"
        _save(render(s, image_size, nrng), root / "test" / name)
        q, _ = _short_qa(rng, s)
        rows.append({"question_id": i, "image": name, "text": f"{q}\n{VIZWIZ_SUFFIX}\n{SHORT_ANSWER}",
                     "category": "default"})
    write_jsonl(root / "llava_test.jsonl", rows)
    return rows


def _textvqa(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], dict]:
    """Prompts with a ``Reference OCR token:`` line (the tiny world has no text, so the "OCR" reads
    colour words, the right one among them); 10 human answers per question, as the real file."""
    rng, nrng = _streams(seed, "eval-textvqa")
    (root / "train_images").mkdir(parents=True, exist_ok=True)
    rows, data = [], []
    for i in range(n):
        s = sample_scene(rng)
        image_id = f"{rng.getrandbits(64):016x}"
        _save(render(s, image_size, nrng), root / "train_images" / f"{image_id}.jpg")
        question = rng.choice(("What color is the shape?", f"What color is the {s.shape}?",
                               "What color is written on the shape?"))
        ocr = [s.color.upper(), *rng.sample([c.upper() for c in COLORS if c != s.color], rng.choice((1, 2)))]
        rng.shuffle(ocr)
        variants = (f"{s.color} {s.shape}", f"dark {s.color}", s.color.upper())
        answers = [s.color] * 10
        for k in rng.sample(range(10), rng.choice((0, 1, 2, 3))):
            answers[k] = rng.choice(variants)
        rows.append({"question_id": image_id, "image": f"{image_id}.jpg",
                     "text": f"{question}\nReference OCR token: {', '.join(ocr)}\n{SHORT_ANSWER}",
                     "category": "default"})
        data.append({"question": question, "image_id": image_id, "image_classes": ["Shape"],
                     "flickr_original_url": "", "flickr_300k_url": "", "image_width": image_size,
                     "image_height": image_size, "answers": answers,
                     "question_tokens": question.rstrip("?").lower().split(), "question_id": 34602 + i,
                     "set_name": "val"})
    annotations = {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": data}
    write_jsonl(root / "llava_textvqa_val_v051_ocr.jsonl", rows)
    write_json(root / "TextVQA_0.5.1_val.json", annotations)
    return rows, annotations


def _mme_pair(rng: random.Random, s: Scene, subtask: str) -> list[tuple[str, str]]:
    """Two yes/no questions about one image (one "Yes", one "No"), in a random order."""
    if subtask == "existence":
        _, shape = _distractor(rng, s, "shape")
        pair = [(f"Is there a {s.shape} in this image?", "Yes"), (f"Is there a {shape} in this image?", "No")]
    elif subtask == "count":
        n_wrong = rng.choice(NUMBER_WORDS[2:5])
        pair = [(f"Is there only one {s.shape} in the image?", "Yes"),
                (f"Are there {n_wrong} {s.shape}s in the image?", "No")]
    elif subtask == "position":
        side, other = ("left", "right") if s.cx < 0.5 else ("right", "left")
        pair = [(f"Is the {s.shape} on the {side} side of the image?", "Yes"),
                (f"Is the {s.shape} on the {other} side of the image?", "No")]
    elif subtask == "color":
        color, _ = _distractor(rng, s, "color")
        pair = [(f"Is there {_a(s.color)} {s.shape} in the image?", "Yes"),
                (f"Is there {_a(color)} {s.shape} in the image?", "No")]
    elif subtask == "scene":
        other = rng.choice([b for b in BACKGROUNDS if b != s.background])
        pair = [(f"Is this picture taken in front of a {s.background} background?", "Yes"),
                (f"Is this picture taken in front of a {other} background?", "No")]
    else:  # numerical_calculation: the arithmetic is in the question, the image only shows a shape
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        wrong = a + b + rng.choice((-2, -1, 1, 2))
        pair = [(f"Is the answer to {a} plus {b} equal to {a + b}?", "Yes"),
                (f"Is the answer to {a} plus {b} equal to {wrong}?", "No")]
    rng.shuffle(pair)
    return pair


#: subtask -> (folder layout, image suffix): "flat" keeps images and their .txt side by side
#: (existence, count, ...), "split" uses images/ + questions_answers_YN/ (scene, artwork, ...).
MME_SUBTASKS = {"existence": ("flat", ".jpg"), "count": ("flat", ".jpg"), "position": ("flat", ".jpg"),
                "color": ("flat", ".jpg"), "scene": ("split", ".jpg"), "numerical_calculation": ("flat", ".png")}


def _mme(root: Path, seed: int, image_size: int, n: int) -> list[dict]:
    """The MME release layout: per subtask, image + ``<name>.txt`` (``question<TAB>Yes|No`` per
    line, 2 questions per image); ``llava_mme.jsonl`` pairs them consecutively, grouped by subtask."""
    rng, nrng = _streams(seed, "eval-mme")
    bench = root / "MME_Benchmark_release_version"
    per_task = max(1, n // (2 * len(MME_SUBTASKS)))
    rows = []
    for subtask, (layout, suffix) in MME_SUBTASKS.items():
        img_dir = bench / subtask / ("images" if layout == "split" else "")
        qa_dir = bench / subtask / ("questions_answers_YN" if layout == "split" else "")
        img_dir.mkdir(parents=True, exist_ok=True)
        qa_dir.mkdir(parents=True, exist_ok=True)
        for num in sorted(_unique_ints(rng, per_task, 1, 600_000)):
            s = sample_scene(rng)
            name = f"{num:012d}" if suffix == ".jpg" else f"{num % 10_000:04d}"
            _save(render(s, image_size, nrng), img_dir / f"{name}{suffix}")
            pair = _mme_pair(rng, s, subtask)
            with atomic_write(qa_dir / f"{name}.txt") as fh:
                fh.write("".join(f"{q} Please answer yes or no.\t{a}\n" for q, a in pair))
            rel = f"{subtask}/{'images/' if layout == 'split' else ''}{name}{suffix}"
            rows += [{"question_id": rel, "image": rel, "text": f"{q}\n{SHORT_ANSWER}", "category": subtask}
                     for q, _ in pair]
    write_jsonl(root / "llava_mme.jsonl", rows)
    return rows


def _jpeg_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=95)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _mmbench(path: Path, seed: int, image_size: int, n: int, chinese: bool) -> list[dict]:
    """A dev TSV: ``n`` questions plus their circular copies (options rotated by k at index
    ``i + k * 1e6``; a copy's ``image`` cell holds the original's index, as in the real TSV)."""
    rng, nrng = _streams(seed, "eval-mmbench-cn" if chinese else "eval-mmbench")
    color_name = COLORS_CN if chinese else {c: c for c in COLORS}
    shape_name = SHAPES_CN if chinese else {x: x for x in SHAPES}
    base = []
    for i in range(n):
        s = sample_scene(rng)
        if rng.random() < 0.6:
            question = "图中形状是什么颜色？" if chinese else f"What color is the {s.shape}?"
            answer, pool, cat = color_name[s.color], list(color_name.values()), "attribute_recognition"
        else:
            question = "图中是什么形状？" if chinese else "Which shape is shown in the image?"
            answer, pool, cat = shape_name[s.shape], list(shape_name.values()), "object_localization"
        options = [answer, *rng.sample([p for p in pool if p != answer], rng.choice((1, 2, 3, 3)))]
        rng.shuffle(options)
        hint = rng.choice(("", "", "图中只有一个物体。" if chinese else "The picture shows one object."))
        base.append({"index": i, "question": question, "hint": hint, "options": options,
                     "answer": options.index(answer), "category": cat, "image": _jpeg_b64(render(s, image_size, nrng))})
    rows = []
    for k in range(4):
        for b in base:
            m = len(b["options"])
            if k >= m:
                continue
            opts = b["options"][k:] + b["options"][:k]
            row = {"index": b["index"] + k * 1_000_000, "question": b["question"], "hint": b["hint"]}
            row.update({ch: (opts[j] if j < m else "") for j, ch in enumerate("ABCD")})
            row.update({"answer": "ABCD"[(b["answer"] - k) % m], "category": b["category"],
                        "image": b["image"] if k == 0 else str(b["index"]), "source": "synthetic",
                        "l2-category": "finegrained_perception (instance-level)", "comment": "", "split": "dev"})
            rows.append(row)
    columns = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
               "l2-category", "comment", "split"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.write("\t".join(columns) + "\n")
        for r in rows:
            fh.write("\t".join(str(r[c]) for c in columns) + "\n")
    return rows


def _seed_bench(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], dict]:
    """About a quarter video questions (Action Recognition: the middle frame, as
    ``extract_video_frames.py`` writes it, in ``SEED-Bench-video-image/``), the rest image ones."""
    rng, nrng = _streams(seed, "eval-seed")
    for sub in ("SEED-Bench-image", "SEED-Bench-video-image"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows, questions = [], []
    n_video = max(1, n // 4) if n else 0
    kinds = ["video"] * n_video + ["image"] * (n - n_video)
    rng.shuffle(kinds)
    qids = _unique_ints(rng, n, 1, 110_000)
    for qid_num, kind in zip(qids, kinds, strict=True):
        s = sample_scene(rng)
        if kind == "video":
            type_name, question = "Action Recognition", "What is the shape doing in the video?"
            answer = f"Showing {_a(s.color)} {s.shape}"
            pool = [f"Showing {_a(c)} {x}" for c in COLORS for x in SHAPES if (c, x) != (s.color, s.shape)]
            data_id = f"{rng.randint(1, 220_000)}.webm"
            image = f"SEED-Bench-video-image/{data_id.split('.')[0]}.png"
        else:
            type_name = rng.choice(("Instance Attributes", "Instance Identity", "Scene Understanding"))
            if type_name == "Instance Attributes":
                question, answer, pool = f"What is the color of the {s.shape}?", s.color, list(COLORS)
            elif type_name == "Instance Identity":
                question, answer, pool = "What object is shown in the image?", s.shape, list(SHAPES)
            else:
                question, answer, pool = "What color is the background?", s.background, list(BACKGROUNDS)
            data_id = f"{rng.randint(1_000_000, 9_999_999)}_{rng.randint(1_000_000_000, 9_999_999_999)}.jpg"
            image = f"SEED-Bench-image/{data_id}"
        choices = [answer, *rng.sample([p for p in pool if p != answer], 3)]
        rng.shuffle(choices)
        letter = "ABCD"[choices.index(answer)]
        _save(render(s, image_size, nrng), root / image)
        qid = str(qid_num)
        rows.append({"image": image, "text": f"{question}\n{_options(choices)}\n{LETTER_ANSWER}",
                     "category": type_name, "question_id": qid})
        questions.append({"answer": letter, **{f"choice_{c}": v for c, v in zip("abcd", choices, strict=True)},
                          "data_id": data_id, "data_type": kind, "question": question, "question_id": qid,
                          "question_type_id": SEED_TYPES[type_name]})
        if kind == "video":
            questions[-1]["segment"] = None
    annotations = {"question_type": SEED_TYPES, "questions": questions}
    write_jsonl(root / "llava-seed-bench.jsonl", rows)
    write_json(root / "SEED-Bench.json", annotations)
    return rows, annotations


def _answer_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))


def _llava_bench(root: Path, seed: int, image_size: int, n_images: int) -> tuple[list[dict], list[dict]]:
    """HF liuhaotian/llava-bench-in-the-wild layout: 3 questions (conv, detail, complex) per image,
    a human caption per image, and reference ("GPT-4") answers, written here from the scene."""
    rng, nrng = _streams(seed, "eval-llava-bench")
    (root / "images").mkdir(parents=True, exist_ok=True)
    questions, contexts, references = [], [], []
    for i in range(n_images):
        s = sample_scene(rng)
        name = f"{i + 1:03d}.jpg"
        _save(render(s, image_size, nrng), root / "images" / name)
        contexts.append({"id": f"{i + 1:03d}", "image": name,
                         "caption": f"{_a(s.size_word).capitalize()} {s.color} {s.shape} {s.where} on a plain "
                                    f"{s.background} background."})
        items = [
            ("conv", f"What color is the {s.shape}?", f"The {s.shape} is {s.color}."),
            ("detail", rng.choice(DETAIL_PROMPTS),
             f"The image shows {_a(s.size_word)} {s.color} {s.shape} on a plain {s.background} background. "
             f"The {s.shape} is {s.where} of the picture."),
            ("complex", "What would change if the shape were painted in the color of the background?",
             f"The {s.color} {s.shape} would be hard to see, because it would blend into the "
             f"{s.background} background."),
        ]
        for category, text, reference in items:
            qid = len(questions)
            questions.append({"image": name, "text": text, "category": category, "question_id": qid})
            references.append({"question_id": qid, "prompt": text, "text": reference, "answer_id": _answer_id(rng),
                               "model_id": "gpt-4-0314", "metadata": {}})
    write_jsonl(root / "questions.jsonl", questions)
    write_jsonl(root / "context.jsonl", contexts)
    write_jsonl(root / "answers_gpt4.jsonl", references)
    return questions, references


def _mm_vet(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], dict]:
    """``llava-mm-vet.jsonl`` + ``mm-vet.json`` (``{"v1_<i>": {imagename, capability, question,
    answer}}``, ground truths using ``<AND>``/``<OR>`` as the real file)."""
    rng, nrng = _streams(seed, "eval-mm-vet")
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows, meta = [], {}
    for i in range(n):
        s = sample_scene(rng)
        name = f"v1_{i}.png"
        _save(render(s, image_size, nrng), root / "images" / name)
        kind = rng.choice(("color", "shape", "both", "background", "where"))
        if kind == "color":
            q, gt, caps = f"What color is the {s.shape}?", s.color, ["rec"]
        elif kind == "shape":
            q, gt, caps = "What shape is in the image?", s.shape, ["rec"]
        elif kind == "both":
            q, gt, caps = "What are the color and the shape of the object?", f"{s.color}<AND>{s.shape}", ["rec"]
        elif kind == "background":
            q, gt, caps = "What color is the background?", s.background, ["rec"]
        else:
            side = "left" if s.cx < 0.5 else "right"
            q, gt, caps = f"Is the {s.shape} on the left or on the right?", f"{side}<OR>{side} side", ["rec", "spat"]
        rows.append({"image": name, "text": q, "category": "conv", "question_id": i})
        meta[f"v1_{i}"] = {"imagename": name, "capability": caps, "question": q, "answer": gt}
    write_jsonl(root / "llava-mm-vet.jsonl", rows)
    write_json(root / "mm-vet.json", meta, indent=2)
    return rows, meta


# ----------------------------------------------------------------------------------------------- entry points


def _record_texts(records: list[dict]) -> list[str]:
    return [t["value"].replace(IMAGE_TOKEN, "").strip() for r in records for t in r["conversations"]]


def generate_world(out_dir: Path, *, seed: int = 0, image_size: int = 32, n_pretrain: int = 2000,
                   n_finetune: int = 3000, n_eval: int = 200) -> dict:
    """Write the tiny world under ``out_dir`` (``pretrain/``, ``finetune/``, ``eval/``, ``corpus.txt``).

    Same ``seed`` gives byte-identical files. ``n_eval`` is the number of questions of GQA, POPE
    (per category, rounded down to even) and ScienceQA; the other nine benchmarks get small sets of
    ``min(n_eval, SMALL_EVAL)`` questions (MMBench/MMBench-CN, MM-Vet: half as many base questions;
    LLaVA-Bench: 3 per image, a sixth as many images). Each of the three folders is replaced
    atomically. Returns ``{"seed", "image_size", "counts": {file: n}, "finetune_kinds", "corpus"}``,
    where ``corpus`` holds every distinct text (``<image>`` removed) for training a tokenizer.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir / "pretrain") as tmp:
        pre_records, pre_scenes = _pretrain(tmp, seed, image_size, n_pretrain)
    with atomic_dir(out_dir / "finetune") as tmp:
        ft_records, ft_scenes, kinds = _finetune(tmp, seed, image_size, n_finetune)
    freq = Counter((s.color, s.shape) for s in pre_scenes + ft_scenes)
    popular = sorted(((c, x) for c in COLORS for x in SHAPES), key=lambda p: (-freq[p], p))
    with atomic_dir(out_dir / "eval") as tmp:
        gqa_q, gqa_truth = _gqa(tmp / "gqa", seed, image_size, n_eval)
        pope_q, pope_labels = _pope(tmp / "pope", seed, image_size, n_eval, popular)
        sqa_records, sqa_problems = _scienceqa(tmp / "scienceqa", seed, image_size, n_eval)
        m = min(n_eval, SMALL_EVAL)
        vqav2_dev, vqav2_full = _vqav2(tmp / "vqav2", seed, image_size, m)
        vizwiz_q = _vizwiz(tmp / "vizwiz", seed, image_size, m)
        textvqa_q, textvqa_ann = _textvqa(tmp / "textvqa", seed, image_size, m)
        mme_q = _mme(tmp / "MME", seed, image_size, m)
        mmb_rows = _mmbench(tmp / "mmbench" / Path(MMBENCH_TSV).name, seed, image_size, m // 2, chinese=False)
        mmb_cn_rows = _mmbench(tmp / "mmbench_cn" / Path(MMBENCH_CN_TSV).name, seed, image_size, m // 2,
                               chinese=True)
        seed_q, seed_ann = _seed_bench(tmp / "seed_bench", seed, image_size, m)
        lb_q, lb_refs = _llava_bench(tmp / "llava-bench-in-the-wild", seed, image_size, max(1, m // 6))
        mmvet_q, mmvet_meta = _mm_vet(tmp / "mm-vet", seed, image_size, m // 2)

    texts = [SYSTEM_PROMPT, "USER", "ASSISTANT"]
    texts += _record_texts(pre_records) + _record_texts(ft_records)
    texts += [q["text"] for q in gqa_q + pope_q] + [t["answer"] for t in gqa_truth.values()]
    texts += ["yes", "no", "Yes", "No"] + _record_texts(sqa_records)
    corpus = list(dict.fromkeys(t for t in texts if t))
    with atomic_write(out_dir / "corpus.txt") as fh:
        fh.write("\n".join(corpus) + "\n")

    counts = {PRETRAIN_JSON: len(pre_records), FINETUNE_JSON: len(ft_records), GQA_QUESTIONS: len(gqa_q),
              GQA_ANSWERS: len(gqa_truth), POPE_QUESTIONS: len(pope_q), SQA_QUESTIONS: len(sqa_records),
              SQA_PROBLEMS: len(sqa_problems)}
    counts.update({f"eval/pope/coco/coco_pope_{c}.json": len(rows) for c, rows in pope_labels.items()})
    counts.update({VQAV2_QUESTIONS: len(vqav2_dev), VQAV2_FULL: len(vqav2_full), VIZWIZ_QUESTIONS: len(vizwiz_q),
                   TEXTVQA_QUESTIONS: len(textvqa_q), TEXTVQA_ANNOTATIONS: len(textvqa_ann["data"]),
                   MME_QUESTIONS: len(mme_q), MMBENCH_TSV: len(mmb_rows), MMBENCH_CN_TSV: len(mmb_cn_rows),
                   SEED_QUESTIONS: len(seed_q), SEED_ANNOTATIONS: len(seed_ann["questions"]),
                   LLAVA_BENCH_QUESTIONS: len(lb_q), LLAVA_BENCH_REFERENCES: len(lb_refs),
                   MM_VET_QUESTIONS: len(mmvet_q), MM_VET_METADATA: len(mmvet_meta)})
    return {"seed": seed, "image_size": image_size, "counts": counts,
            "finetune_kinds": dict(sorted(kinds.items())), "corpus": corpus}


def _tar_folder(src: Path, dest: Path) -> None:
    """Deterministic uncompressed tar of ``src``'s contents (sorted, mtime 0, owner 0)."""
    paths = sorted(src.rglob("*"), key=lambda p: p.relative_to(src).as_posix())
    with atomic_write(dest, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for p in paths:
            info = tarfile.TarInfo(p.relative_to(src).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if p.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = p.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))


def package_mirror(world_dir: Path, mirror_dir: Path, parts: tuple[str, ...] = MIRROR_PARTS) -> list[dict]:
    """Pack ``pretrain/``, ``finetune/`` and ``eval/`` into ``<part>.tar`` files and describe them.

    Each archive holds the folder's contents at its top level, so unpacking into ``dest`` gives
    e.g. ``pretrain/blip_laion_cc_sbu_558k.json``. The list is also written to ``sources.json``.
    """
    world_dir, mirror_dir = Path(world_dir), Path(mirror_dir)
    mirror_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for part in parts:
        src = world_dir / part
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: missing; run generate_world first")
        archive = mirror_dir / f"{part}.tar"
        _tar_folder(src, archive)
        sources.append({"name": part, "url": archive.resolve().as_uri(), "dest": part,
                        "sha256": sha256_file(archive), "size": os.path.getsize(archive), "unpack": "tar"})
    write_json(mirror_dir / "sources.json", sources)
    return sources
