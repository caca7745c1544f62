"""LLaVA-Bench (In-the-Wild), as HF liuhaotian/llava-bench-in-the-wild: 3 questions (conv, detail,
complex) per image, a human caption per image (the judge's context), and reference ("GPT-4")
answers, written here from the scene."""

from __future__ import annotations

import random
from pathlib import Path

from llava_core.evalkit.llava_bench import LLaVABenchKit
from llava_core.evaluate.word_overlap import word_overlap
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import Stream, article
from llava_core.synthetic.tasks import DETAIL_PROMPTS, description, open_questions


def answer_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))


def write(eval_root: Path, seed: int, image_size: int, n_images: int) -> Written:
    kit, st = KitWriter(LLaVABenchKit(), eval_root), Stream(seed, "eval-llava-bench", image_size)
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
        conv, complex_ = open_questions(s)[:2]
        items = [("conv", *conv), ("detail", rng.choice(DETAIL_PROMPTS), description(s)), ("complex", *complex_)]
        for category, text, reference in items:
            qid = len(questions)
            questions.append({"image": name, "text": text, "category": category, "question_id": qid})
            references.append({"question_id": qid, "prompt": text, "text": reference, "answer_id": answer_id(rng),
                               "model_id": "gpt-4-0314", "metadata": {}})
    kit.jsonl("questions", questions)
    kit.jsonl("context", contexts, counted=False)
    kit.jsonl("references", references)
    # A blind answerer in the right format: another image's reference answer to the same kind of
    # question, scored as the rule judge scores (1-10 by word overlap; the reference gets 10).
    n = len(references)
    scores = [max(1.0, round(10.0 * word_overlap(r["text"], references[(i + 3) % n]["text"]), 1))
              for i, r in enumerate(references)]
    kit.written.chance = 10.0 * sum(scores) / n if n > 3 else float("nan")
    return kit.written
