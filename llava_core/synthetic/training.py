"""The two training sets of the tiny world: the stage-1 captions (LCS-558K layout) and the stage-2
instruction mixture (mix665k layout: short-answer VQA, multiple choice, conversation and detailed
description, text-only turns)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from llava_core.data.formats import IMAGE_TOKEN, write_llava_records
from llava_core.synthetic import tasks
from llava_core.synthetic.scenes import NUMBER_WORDS, SHORT_ANSWER, Scene, Stream, article, unique_ints

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
OPPOSITES = {"big": "small", "hot": "cold", "up": "down", "light": "dark", "fast": "slow", "old": "new",
             "open": "closed", "happy": "sad"}


def caption_words(s: Scene) -> dict[str, str]:
    """The words :data:`CAPTIONS` templates are filled with, for scene ``s``."""
    return dict(a_color=article(s.color), color=s.color, shape=s.shape, bg=s.background,
                a_size=article(s.size_word), where=s.where)


def _caption(rng: random.Random, s: Scene) -> str:
    return rng.choice(CAPTIONS).format(**caption_words(s))


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
# LLaVA's mix665k holds the train splits of VQAv2, GQA, OCR-VQA, TextCaps, A-OKVQA and more, in the
# very prompt formats the benchmarks use. The tiny mixture does the same for all 12: each task below
# asks about a training image in one benchmark's format (llava_core/synthetic/tasks.py, which
# the eval writers share), so the tiny model learns every answer format, and what it answers
# depends on the image.

#: The stage-2 mixture: task -> share of the records (the rest are short-answer VQA).
MIXTURE = {"text": 0.03, "vizwiz": 0.06, "textvqa": 0.06, "pope": 0.12, "mme": 0.08, "mc": 0.22, "conv": 0.12}


def _conversation(turns: list[tuple[str, str]]) -> list[dict]:
    conv = []
    for q, a in turns:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return conv


def _turns(kind: str, rng: random.Random, s: Scene) -> list[tuple[str, str]]:
    """The (prompt, answer) turns of one record of ``kind``; the first turn starts with ``<image>``
    where the benchmark's prompt does."""
    if kind == "vqa":  # VQAv2 / GQA: 2-3 short-answer turns on one image
        asked, want = {}, rng.choice((2, 3))
        while len(asked) < want:
            q, a = tasks.short_qa(rng, s)
            asked.setdefault(q, a)
        turns = [(f"{q}\n{SHORT_ANSWER}", a.capitalize()) for q, a in asked.items()]
    elif kind == "vizwiz":
        turns = [tasks.vizwiz(rng, s)[:2]]
    elif kind == "textvqa":
        turns = [tasks.textvqa(rng, s)[:2]]
    # Yes/no turns are drawn independently: a record holding one "yes" and one "no" would teach the
    # shortcut "the second answer is the opposite of the first" instead of looking at the image.
    elif kind == "pope":
        turns = [tasks.pope(rng, s, rng.random() < 0.5, rng.choice(tasks.POPE_NEGATIVES))
                 for _ in range(rng.choice((1, 2)))]
    elif kind == "mme":  # one of the subtask's two questions
        turns = [(tasks.mme_prompt(q), a) for q, a in tasks.mme_pair(rng, s, rng.choice(tasks.MME_SUBTASKS))[:1]]
    elif kind == "mc":
        prompt, letter, _ = tasks.multiple_choice(rng, s, rng.choice(tasks.MC_STYLES))
        turns = [(prompt, letter)]
    else:  # conversation or detailed description, answered in sentences (LLaVA-Bench, MM-Vet)
        return tasks.conversation(rng, s)
    return [(f"{IMAGE_TOKEN}\n{turns[0][0]}", turns[0][1]), *turns[1:]]


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


def write_finetune(root: Path, seed: int, image_size: int, n: int,
                   records_per_image: int = 1) -> tuple[list[dict], dict[str, Scene], Counter]:
    """Write ``n`` stage-2 records (:data:`MIXTURE`) and their images under ``root``.

    Each image serves ``records_per_image`` records of independently drawn kinds, as mix665k asks
    VQAv2, GQA, A-OKVQA and LLaVA-Instruct questions about the same COCO images: many distinct
    questions per image make a comparison (POPE's "is there a red circle?") cheaper to learn than
    to memorise. A blank VizWiz image is never shared: nothing else can be asked about it.
    Returns the records, each image's scene by its path in the records, and the count of each kind.
    """
    if records_per_image < 1:
        raise ValueError(f"records_per_image must be >= 1, got {records_per_image}")
    st = Stream(seed, "finetune", image_size)
    rng = st.rng
    kinds = [k for k, share in MIXTURE.items() for _ in range(max(1, round(share * n)) if n else 0)]
    kinds += ["vqa"] * max(0, n - len(kinds))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    numbers = iter(unique_ints(rng, 2 * n, 1, 600_000))
    records, made = [], set()
    scenes: dict[str, Scene] = {}
    shared: tuple[Scene, str] | None = None
    uses = 0
    for kind in kinds:
        num = next(numbers)
        if kind == "text":
            rid = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                          for _ in range(7)) + "_0"
            records.append({"id": rid, "conversations": _conversation(_text_only_turns(rng))})
            continue
        blank = kind == "vizwiz" and rng.random() < tasks.VIZWIZ_UNANSWERABLE
        if blank or shared is None or uses == records_per_image:
            # A new image; short-answer VQA images alternate between the GQA and COCO folders, as
            # in the real mixture.
            s, image_num = st.scene(blank=blank), next(numbers)
            rel = (f"gqa/images/{image_num}.jpg" if kind == "vqa" and image_num % 2
                   else f"coco/train2017/{image_num:012d}.jpg")
            path = root / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            st.save(s, path)
            scenes[rel] = s
            if not blank:
                shared, uses = (s, rel), 0
        else:
            s, rel = shared
        if not blank:
            uses += 1
        turns = _turns(kind, rng, s)
        rid = str(num) if rel.startswith("gqa/") else f"{num:012d}"
        records.append({"id": rid, "image": rel, "conversations": _conversation(turns)})
    write_llava_records(root / FINETUNE_JSON, records)
    return records, scenes, Counter(kinds)
