"""MME: the release layout (per subtask, each image and its ``<name>.txt`` of two yes/no
questions, one "Yes" and one "No") and ``llava_mme.jsonl``, which pairs them consecutively,
grouped by subtask."""

from __future__ import annotations

import random
from pathlib import Path

from llava_core.data.synthetic.benchmarks.common import KitWriter, Written
from llava_core.data.synthetic.scenes import (
    BACKGROUNDS,
    NUMBER_WORDS,
    SHORT_ANSWER,
    Scene,
    Stream,
    article,
    distractor,
    unique_ints,
)
from llava_core.evaluate.benchmarks.mme import MME, SPLIT_ANSWERS, SPLIT_IMAGES, YES_NO
from llava_core.io import atomic_write

#: subtask -> (folder layout, image suffix): "flat" keeps images and their .txt side by side
#: (existence, count, ...), "split" uses the two split folders (scene, artwork, ...).
SUBTASKS = {"existence": ("flat", ".jpg"), "count": ("flat", ".jpg"), "position": ("flat", ".jpg"),
            "color": ("flat", ".jpg"), "scene": ("split", ".jpg"), "numerical_calculation": ("flat", ".png")}


def question_pair(rng: random.Random, s: Scene, subtask: str) -> list[tuple[str, str]]:
    """Two yes/no questions about one image (one "Yes", one "No"), in a random order."""
    if subtask == "existence":
        _, shape = distractor(rng, s, "shape")
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
        color, _ = distractor(rng, s, "color")
        pair = [(f"Is there {article(s.color)} {s.shape} in the image?", "Yes"),
                (f"Is there {article(color)} {s.shape} in the image?", "No")]
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


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """About ``n`` questions, spread evenly over :data:`SUBTASKS`."""
    kit, st = KitWriter(MME(), eval_root), Stream(seed, "eval-mme", image_size)
    rng = st.rng
    bench = kit.path("images")  # the release folder: images and ground truth
    per_task = max(1, n // (2 * len(SUBTASKS)))
    rows = []
    for subtask, (layout, suffix) in SUBTASKS.items():
        split = layout == "split"
        img_dir = bench / subtask / (SPLIT_IMAGES if split else "")
        qa_dir = bench / subtask / (SPLIT_ANSWERS if split else "")
        img_dir.mkdir(parents=True, exist_ok=True)
        qa_dir.mkdir(parents=True, exist_ok=True)
        for num in sorted(unique_ints(rng, per_task, 1, 600_000)):
            s = st.scene()
            name = f"{num:012d}" if suffix == ".jpg" else f"{num % 10_000:04d}"
            st.save(s, img_dir / f"{name}{suffix}")
            pair = question_pair(rng, s, subtask)
            with atomic_write(qa_dir / f"{name}.txt") as fh:
                fh.write("".join(f"{q}{YES_NO}\t{a}\n" for q, a in pair))
            rel = f"{subtask}/{SPLIT_IMAGES + '/' if split else ''}{name}{suffix}"
            rows += [{"question_id": rel, "image": rel, "text": f"{q}\n{SHORT_ANSWER}", "category": subtask}
                     for q, _ in pair]
    kit.jsonl("questions", rows)
    return kit.written
