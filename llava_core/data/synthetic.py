"""The synthetic "tiny world": coloured shapes, written in the real LLaVA-1.5 file formats.

Each image is a plain muted background with one large shape (circle, square, triangle or cross)
in one of 8 well-separated colours, with mild colour jitter and pixel noise. :func:`generate_world`
writes a stage-1 set (LCS-558K layout), a stage-2 mixture (mix665k layout) and three eval sets in
the official eval-kit layout (GQA, POPE, ScienceQA), all deterministic in ``seed``.
:func:`package_mirror` packs them into reproducible tar archives with a ``sources.json`` manifest.

Every split draws from its own random streams, so eval images are never training images.
"""

from __future__ import annotations

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
from llava_core.io import atomic_dir, atomic_write, write_json, write_jsonl

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


# ----------------------------------------------------------------------------------------------- entry points


def _record_texts(records: list[dict]) -> list[str]:
    return [t["value"].replace(IMAGE_TOKEN, "").strip() for r in records for t in r["conversations"]]


def generate_world(out_dir: Path, *, seed: int = 0, image_size: int = 32, n_pretrain: int = 2000,
                   n_finetune: int = 3000, n_eval: int = 200) -> dict:
    """Write the tiny world under ``out_dir`` (``pretrain/``, ``finetune/``, ``eval/``, ``corpus.txt``).

    Same ``seed`` gives byte-identical files. ``n_eval`` is the number of questions per benchmark
    (per category for POPE, rounded down to even). Each of the three folders is replaced
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
                        "sha256": _sha256(archive), "size": os.path.getsize(archive), "unpack": "tar"})
    write_json(mirror_dir / "sources.json", sources)
    return sources
