"""VQAv2 test-dev: short-answer questions on COCO-test2015-named images, and the full test2015 file."""

from __future__ import annotations

from pathlib import Path

from llava_core.data.synthetic.benchmarks.common import KitWriter, Written, short_qa
from llava_core.data.synthetic.scenes import SHORT_ANSWER, Stream, unique_ints
from llava_core.evaluate.benchmarks.vqav2 import VQAv2


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """``n`` test-dev questions and the full test2015 file, a superset whose extra questions are
    never asked but must appear (unanswered) in the EvalAI upload."""
    kit, st = KitWriter(VQAv2(), eval_root), Stream(seed, "eval-vqav2", image_size)
    rng = st.rng
    images = kit.folder("images")
    dev, extra = [], []
    for num in unique_ints(rng, n, 1, 600_000):
        s = st.scene()
        name = f"COCO_test2015_{num:012d}.jpg"
        st.save(s, images / name)
        (q1, _), (q2, _) = short_qa(rng, s), short_qa(rng, s)
        dev.append({"question_id": num * 1000, "image": name, "text": f"{q1}\n{SHORT_ANSWER}", "category": "default"})
        if q2 != q1:  # a test-standard question on the same image
            extra.append({"question_id": num * 1000 + 1, "image": name, "text": f"{q2}\n{SHORT_ANSWER}",
                          "category": "default"})
    kit.jsonl("questions", dev)
    kit.jsonl("full_test", sorted(dev + extra, key=lambda r: r["question_id"]))
    return kit.written
