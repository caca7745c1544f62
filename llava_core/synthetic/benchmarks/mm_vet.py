"""MM-Vet: ``llava-mm-vet.jsonl`` and the grader's ``mm-vet.json`` (``{"v1_<i>": {imagename,
capability, question, answer}}``, ground truths using ``<AND>``/``<OR>`` as the real file)."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.mm_vet import MMVetKit, grader_key
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import Stream


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    kit, st = KitWriter(MMVetKit(), eval_root), Stream(seed, "eval-mm-vet", image_size)
    rng = st.rng
    images = kit.folder("images")
    rows, meta, odds = [], {}, []
    for i in range(n):
        s = st.scene()
        name = f"{grader_key(i)}.png"
        st.save(s, images / name)
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
        # a blind guess: 1 of 8 colours, 4 shapes, 4 backgrounds, 2 sides; both: half of each part
        odds.append({"color": 1 / 8, "shape": 1 / 4, "both": (1 / 8 + 1 / 4) / 2, "background": 1 / 4,
                     "where": 1 / 2}[kind])
        rows.append({"image": name, "text": q, "category": "conv", "question_id": i})
        meta[grader_key(i)] = {"imagename": name, "capability": caps, "question": q, "answer": gt}
    kit.jsonl("questions", rows)
    kit.json("metadata", meta, n=len(meta))
    kit.written.chance = 100.0 * sum(odds) / len(odds)
    return kit.written
