"""POPE: yes/no existence questions in its three splits (adversarial, popular, random), the labels
in ``coco/coco_pope_<split>.json`` aligned line by line with the questions, as in real POPE."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.pope import POPEKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import SHORT_ANSWER, Stream, article, distractor, unique_ints

CATEGORIES = ("adversarial", "popular", "random")  # file order of the real llava_pope_test.jsonl
ID_OFFSET = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}  # as the real file


def write(eval_root: Path, seed: int, image_size: int, n: int, popular: list[tuple[str, str]]) -> Written:
    """``n`` questions per split (1 yes + 1 no per image); the yes questions are shared. ``popular``:
    the (colour, shape) pairs by training frequency, most frequent first. ``rows``: ``questions``."""
    kit, st = KitWriter(POPEKit(), eval_root), Stream(seed, "eval-pope", image_size)
    rng = st.rng
    folder = kit.folder("images")
    n_images = n // 2
    images = []
    for num in unique_ints(rng, n_images, 1, 600_000):
        s = st.scene()
        name = f"COCO_val2014_{num:012d}.jpg"
        st.save(s, folder / name)
        images.append((name, s))
    questions = []
    for cat in CATEGORIES:
        rows = []
        for name, s in images:
            if cat == "random":
                neg = distractor(rng, s, "any")
            elif cat == "adversarial":  # differs in one attribute only
                neg = distractor(rng, s, rng.choice(("color", "shape")))
            else:  # popular: the most frequent training pairs that are absent here
                neg = rng.choice([p for p in popular[:4] if p != (s.color, s.shape)][:3])
            pair = [((s.color, s.shape), "yes"), (neg, "no")]
            rng.shuffle(pair)
            for (color, shape), label in pair:
                rows.append({"question_id": len(rows) + 1, "image": name,
                             "text": f"Is there {article(color)} {shape} in the image?", "label": label})
        questions += [{"question_id": ID_OFFSET[cat] + r["question_id"], "image": r["image"],
                       "text": f"{r['text']}\n{SHORT_ANSWER}", "category": cat} for r in rows]
        kit.jsonl("labels", rows, split=cat)
    kit.jsonl("questions", questions)
    kit.written.rows.update(questions=questions)
    kit.written.chance = POPEKit.chance  # half the labels "yes" in every split, as in real POPE: F1 2/3 for "yes"
    return kit.written
