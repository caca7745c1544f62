"""VizWiz test: short-answer questions with VizWiz's "unanswerable" instruction."""

from __future__ import annotations

from pathlib import Path

from llava_core.data.synthetic.benchmarks.common import KitWriter, Written, short_qa
from llava_core.data.synthetic.scenes import SHORT_ANSWER, Stream
from llava_core.evaluate.benchmarks.vizwiz import VizWiz

UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    kit, st = KitWriter(VizWiz(), eval_root), Stream(seed, "eval-vizwiz", image_size)
    images = kit.folder("images")
    rows = []
    for i in range(n):
        s = st.scene()
        name = f"VizWiz_test_{i:08d}.jpg"
        st.save(s, images / name)
        q, _ = short_qa(st.rng, s)
        rows.append({"question_id": i, "image": name, "text": f"{q}\n{UNANSWERABLE}\n{SHORT_ANSWER}",
                     "category": "default"})
    kit.jsonl("questions", rows)
    return kit.written
