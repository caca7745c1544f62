"""The two training sets of the tiny world: the stage-1 captions (LCS-558K layout) and the stage-2
instruction mixture (mix665k layout: short-answer VQA, multiple choice, conversation and detailed
description, text-only turns)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from llava_core.data.formats import IMAGE_TOKEN, write_llava_records
from llava_core.data.synthetic.scenes import (
    LETTER_ANSWER,
    NUMBER_WORDS,
    SHORT_ANSWER,
    Scene,
    Stream,
    article,
    distractor,
    option_lines,
    unique_ints,
)

PRETRAIN_JSON = "blip_laion_cc_sbu_558k.json"
FINETUNE_JSON = "llava_v1_5_mix665k.json"

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


def _caption(rng: random.Random, s: Scene) -> str:
    return rng.choice(CAPTIONS).format(a_color=article(s.color), color=s.color, shape=s.shape, bg=s.background,
                                       a_size=article(s.size_word), where=s.where)


def _with_image(rng: random.Random, text: str) -> str:
    """Put ``<image>`` before or after the instruction, as LLaVA's data does."""
    return f"{IMAGE_TOKEN}\n{text}" if rng.random() < 0.5 else f"{text}\n{IMAGE_TOKEN}"


def write_pretrain(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], list[Scene]]:
    st = Stream(seed, "pretrain", image_size)
    rng = st.rng
    records, scenes, made = [], [], set()
    for num in unique_ints(rng, n, 0, 10_000_000):
        rid = f"{num:09d}"
        rel = f"{rid[:5]}/{rid}.jpg"
        s = st.scene()
        if rid[:5] not in made:
            (root / "images" / rid[:5]).mkdir(parents=True, exist_ok=True)
            made.add(rid[:5])
        st.save(s, root / "images" / rel)
        records.append({"id": rid, "image": rel, "conversations": [
            {"from": "human", "value": _with_image(rng, rng.choice(PRETRAIN_PROMPTS))},
            {"from": "gpt", "value": _caption(rng, s)}]})
        scenes.append(s)
    write_llava_records(root / PRETRAIN_JSON, records)
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
            return f"Is there {article(s.color)} {s.shape} in the image?", "Yes"
        color, shape = distractor(rng, s, rng.choice(("color", "shape", "both")))
        return f"Is there {article(color)} {shape} in the image?", "No"

    def background_q() -> tuple[str, str]:
        return "What color is the background?", s.background.capitalize()

    makers: list[Callable[[], tuple[str, str]]] = [color_q, shape_q, exist_q, background_q]
    return [make() for make in rng.sample(makers, rng.choice((2, 3)))]


def _mc_turn(rng: random.Random, s: Scene) -> tuple[str, str]:
    kind = rng.choice(("color", "shape", "background"))
    q = {"color": f"What color is the {s.shape}?", "shape": "Which shape can be seen in the picture?",
         "background": "What color is the background of the image?"}[kind]
    answer, pool = s.attribute(kind)
    choices = [answer, *rng.sample([p for p in pool if p != answer], 3)]
    rng.shuffle(choices)
    return f"{q}\n{option_lines(choices)}\n{LETTER_ANSWER}", chr(65 + choices.index(answer))


def _conv_turns(rng: random.Random, s: Scene) -> list[tuple[str, str]]:
    if rng.random() < 0.5:  # detailed description
        ans = (f"The image shows {article(s.size_word)} {s.color} {s.shape} on a plain {s.background} background. "
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


def write_finetune(root: Path, seed: int, image_size: int, n: int) -> tuple[list[dict], list[Scene], Counter]:
    st = Stream(seed, "finetune", image_size)
    rng = st.rng
    n_text = max(1, round(0.03 * n)) if n else 0
    n_mc, n_conv = round(0.15 * n), round(0.17 * n)
    kinds = ["text"] * n_text + ["mc"] * n_mc + ["conv"] * n_conv
    kinds += ["vqa"] * max(0, n - len(kinds))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    numbers = iter(unique_ints(rng, n, 1, 600_000))
    yes_no = _YesNo()
    records, scenes, made = [], [], set()
    for kind in kinds:
        num = next(numbers)
        if kind == "text":
            rid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                          for _ in range(7)) + "_0"
            records.append({"id": rid, "conversations": _conversation(_text_only_turns(rng))})
            continue
        s = st.scene()
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
        st.save(s, path)
        records.append({"id": rid, "image": rel, "conversations": _conversation(turns)})
        scenes.append(s)
    write_llava_records(root / FINETUNE_JSON, records)
    return records, scenes, Counter(kinds)
