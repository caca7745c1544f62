"""GQA testdev-balanced: colour questions, balanced over the 8 colours, with GQA-style ground truth."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.gqa import GQAKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import COLORS, SHORT_ANSWER, Stream, balanced, unique_ints


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """``n`` questions; ``rows``: ``questions`` and ``ground_truth`` (by question id)."""
    kit, st = KitWriter(GQAKit(), eval_root), Stream(seed, "eval-gqa", image_size)
    rng = st.rng
    images = kit.folder("images")
    qids = unique_ints(rng, n, 200_000_000, 210_000_000)
    image_nums = unique_ints(rng, n, 100_000, 600_000)
    questions, truth = [], {}
    for qid_num, img_num, color in zip(qids, image_nums, balanced(rng, list(COLORS), n), strict=True):
        s = st.scene(color=color)
        qid, image_id = str(qid_num), f"n{img_num}"
        st.save(s, images / f"{image_id}.jpg")
        q = "What color is the shape?"
        questions.append({"question_id": qid, "image": f"{image_id}.jpg", "text": f"{q}\n{SHORT_ANSWER}",
                          "category": "default"})
        obj = f"{s.shape} ({img_num % 1000 + 1000})"
        truth[qid] = {
            "semantic": [{"operation": "select", "dependencies": [], "argument": obj},
                         {"operation": "query", "dependencies": [0], "argument": "color"}],
            "entailed": [], "equivalent": [qid], "question": q, "imageId": image_id, "isBalanced": True,
            "groups": {"global": "color", "local": "10q-shape_color"}, "answer": s.color,
            "semanticStr": f"select: {obj}->query: color [0]",
            "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
            "types": {"detailed": "directWhat", "semantic": "attr", "structural": "query"},
            "fullAnswer": f"The {s.shape} is {s.color}.",
        }
    kit.jsonl("questions", questions)
    kit.json("ground_truth", truth, n=len(truth))
    kit.written.rows.update(questions=questions, ground_truth=truth)
    kit.written.chance = 100.0 / len(COLORS)  # colour questions, balanced over the colours
    return kit.written
