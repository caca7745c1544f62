"""LLaVA-Bench (In-the-Wild), as HF liuhaotian/llava-bench-in-the-wild: 3 questions (conv, detail,
complex) per image, a human caption per image (the judge's context), and reference ("GPT-4")
answers, written here from the scene."""

from __future__ import annotations

import random
from pathlib import Path

from llava_core.data.synthetic.benchmarks.common import KitWriter, Written
from llava_core.data.synthetic.scenes import Stream, article
from llava_core.data.synthetic.training import DETAIL_PROMPTS
from llava_core.evaluate.benchmarks.llava_bench import LLaVABench


def answer_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))


def write(eval_root: Path, seed: int, image_size: int, n_images: int) -> Written:
    kit, st = KitWriter(LLaVABench(), eval_root), Stream(seed, "eval-llava-bench", image_size)
    rng = st.rng
    images = kit.folder("images")
    questions, contexts, references = [], [], []
    for i in range(n_images):
        s = st.scene()
        name = f"{i + 1:03d}.jpg"
        st.save(s, images / name)
        contexts.append({"id": f"{i + 1:03d}", "image": name,
                         "caption": f"{article(s.size_word).capitalize()} {s.color} {s.shape} {s.where} on a "
                                    f"plain {s.background} background."})
        items = [
            ("conv", f"What color is the {s.shape}?", f"The {s.shape} is {s.color}."),
            ("detail", rng.choice(DETAIL_PROMPTS),
             f"The image shows {article(s.size_word)} {s.color} {s.shape} on a plain {s.background} background. "
             f"The {s.shape} is {s.where} of the picture."),
            ("complex", "What would change if the shape were painted in the color of the background?",
             f"The {s.color} {s.shape} would be hard to see, because it would blend into the "
             f"{s.background} background."),
        ]
        for category, text, reference in items:
            qid = len(questions)
            questions.append({"image": name, "text": text, "category": category, "question_id": qid})
            references.append({"question_id": qid, "prompt": text, "text": reference, "answer_id": answer_id(rng),
                               "model_id": "gpt-4-0314", "metadata": {}})
    kit.jsonl("questions", questions)
    kit.jsonl("context", contexts, counted=False)
    kit.jsonl("references", references)
    return kit.written
