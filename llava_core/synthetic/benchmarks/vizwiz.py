"""VizWiz test: short-answer questions with VizWiz's "unanswerable" instruction; a quarter of the
images show only a background, so a question about the shape is unanswerable. The answers go into
an annotation file in VizWiz's format, so the tiny world's VizWiz is scored locally."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.vizwiz import VizWizKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import Stream
from llava_core.synthetic.tasks import VIZWIZ_UNANSWERABLE, vizwiz


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    kit, st = KitWriter(VizWizKit(), eval_root), Stream(seed, "eval-vizwiz", image_size)
    images = kit.folder("images")
    rows, annotations, odds = [], [], []
    for i in range(n):
        s = st.scene(blank=st.rng.random() < VIZWIZ_UNANSWERABLE)
        name = f"VizWiz_test_{i:08d}.jpg"
        st.save(s, images / name)
        text, answer, guess = vizwiz(st.rng, s)
        answer = answer.lower()
        rows.append({"question_id": i, "image": name, "text": text, "category": "default"})
        annotations.append({"image": name, "question": text.split("\n")[0],
                            "answers": [{"answer": answer, "answer_confidence": "yes"}] * 10,
                            "answer_type": "unanswerable" if answer == "unanswerable" else "other",
                            "answerable": int(answer != "unanswerable")})
        odds.append(guess)
    kit.jsonl("questions", rows)
    kit.json("annotations", annotations, n=len(annotations), indent=None)
    kit.written.chance = 100.0 * sum(odds) / len(odds)
    return kit.written
