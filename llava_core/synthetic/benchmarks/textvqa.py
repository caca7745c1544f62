"""TextVQA val: colour questions whose prompts carry a ``Reference OCR token:`` line (the tiny
world has no text, so the "OCR" reads colour words, the right one among them), and 10 human
answers per question, as the real annotation file."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.textvqa import TextVQAKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import Stream
from llava_core.synthetic.tasks import textvqa


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    kit, st = KitWriter(TextVQAKit(), eval_root), Stream(seed, "eval-textvqa", image_size)
    rng = st.rng
    images = kit.folder("images")
    rows, data, odds = [], [], []
    for i in range(n):
        s = st.scene()
        image_id = f"{rng.getrandbits(64):016x}"
        st.save(s, images / f"{image_id}.jpg")
        text, _, ocr = textvqa(rng, s)
        question = text.split("\n")[0]
        odds.append(1 / len(ocr))  # a blind reader picks one of the OCR tokens
        variants = (f"{s.color} {s.shape}", f"dark {s.color}", s.color.upper())
        answers = [s.color] * 10
        for k in rng.sample(range(10), rng.choice((0, 1, 2, 3))):
            answers[k] = rng.choice(variants)
        rows.append({"question_id": image_id, "image": f"{image_id}.jpg", "text": text, "category": "default"})
        data.append({"question": question, "image_id": image_id, "image_classes": ["Shape"],
                     "flickr_original_url": "", "flickr_300k_url": "", "image_width": image_size,
                     "image_height": image_size, "answers": answers,
                     "question_tokens": question.rstrip("?").lower().split(), "question_id": 34602 + i,
                     "set_name": "val"})
    kit.jsonl("questions", rows)
    kit.json("annotations", {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1",
                             "data": data}, n=len(data))
    kit.written.chance = 100.0 * sum(odds) / len(odds)
    return kit.written
