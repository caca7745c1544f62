"""MMBench and MMBench-CN dev: a TSV of multiple-choice questions with base64 images, and the
circular copies CircularEval needs (options rotated by k at index ``i + k * 1e6``; a copy's
``image`` cell holds the original's index, as in the real TSV)."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.mmbench import ALL_OPTIONS, CIRCULAR_STRIDE, MMBenchCNKit, MMBenchKit
from llava_core.io import atomic_write
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import COLORS, SHAPES, Stream, jpeg_b64
from llava_core.synthetic.tasks import COLORS_CN, SHAPES_CN

COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
           "l2-category", "comment", "split"]


def write(eval_root: Path, seed: int, image_size: int, n: int, chinese: bool = False) -> Written:
    """``n`` questions plus their circular copies; MMBench-CN's (translated) with ``chinese``."""
    kit = KitWriter(MMBenchCNKit() if chinese else MMBenchKit(), eval_root)
    st = Stream(seed, "eval-mmbench-cn" if chinese else "eval-mmbench", image_size)
    rng = st.rng
    color_name = COLORS_CN if chinese else {c: c for c in COLORS}
    shape_name = SHAPES_CN if chinese else {x: x for x in SHAPES}
    base = []
    for i in range(n):
        s = st.scene()
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
                     "answer": options.index(answer), "category": cat, "image": jpeg_b64(st.draw(s))})
    letters = "".join(ALL_OPTIONS)
    rows = []
    for k in range(len(ALL_OPTIONS)):
        for b in base:
            m = len(b["options"])
            if k >= m:
                continue
            opts = b["options"][k:] + b["options"][:k]
            row = {"index": b["index"] + k * CIRCULAR_STRIDE, "question": b["question"], "hint": b["hint"]}
            row.update({ch: (opts[j] if j < m else "") for j, ch in enumerate(letters)})
            row.update({"answer": letters[(b["answer"] - k) % m], "category": b["category"],
                        "image": b["image"] if k == 0 else str(b["index"]), "source": "synthetic",
                        "l2-category": "finegrained_perception (instance-level)", "comment": "", "split": "dev"})
            rows.append(row)
    with atomic_write(kit.path("questions")) as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            fh.write("\t".join(str(r[c]) for c in COLUMNS) + "\n")
    kit.count("questions", len(rows))
    # CircularEval: a question of m options counts only if all m rotations are answered right,
    # which m uniform guesses do with odds (1/m)^m
    kit.written.chance = 100.0 * sum((1 / len(b["options"])) ** len(b["options"]) for b in base) / len(base)
    return kit.written
