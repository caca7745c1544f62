"""VQAv2 test-dev: short-answer questions on COCO-test2015-named images, and the full test2015 file."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.vqav2 import VQAv2Kit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import SHORT_ANSWER, Stream, unique_ints
from llava_core.synthetic.tasks import guess_odds, short_qa


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """``n`` test-dev questions and the full test2015 file, a superset whose extra questions are
    never asked but must appear (unanswered) in the EvalAI upload."""
    kit, st = KitWriter(VQAv2Kit(), eval_root), Stream(seed, "eval-vqav2", image_size)
    rng = st.rng
    images = kit.folder("images")
    dev, extra, annotations, odds = [], [], [], []
    for num in unique_ints(rng, n, 1, 600_000):
        s = st.scene()
        name = f"COCO_test2015_{num:012d}.jpg"
        st.save(s, images / name)
        (q1, a1), (q2, _) = short_qa(rng, s), short_qa(rng, s)
        annotations.append({"question_id": num * 1000, "image_id": num, "multiple_choice_answer": a1,
                            "answers": [{"answer": a1, "answer_confidence": "yes", "answer_id": k + 1}
                                        for k in range(10)]})
        odds.append(guess_odds(a1))
        dev.append({"question_id": num * 1000, "image": name, "text": f"{q1}\n{SHORT_ANSWER}", "category": "default"})
        if q2 != q1:  # a test-standard question on the same image
            extra.append({"question_id": num * 1000 + 1, "image": name, "text": f"{q2}\n{SHORT_ANSWER}",
                          "category": "default"})
    kit.jsonl("questions", dev)
    kit.jsonl("full_test", sorted(dev + extra, key=lambda r: r["question_id"]))
    kit.json("annotations", {"annotations": annotations}, n=len(annotations), indent=None)
    kit.written.chance = 100.0 * sum(odds) / len(odds)
    return kit.written
