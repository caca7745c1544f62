"""MME: the release layout (per subtask, each image and its ``<name>.txt`` of two yes/no
questions, one "Yes" and one "No") and ``llava_mme.jsonl``, which pairs them consecutively,
grouped by subtask."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.mme import PERCEPTION, SPLIT_ANSWERS, SPLIT_IMAGES, YES_NO, MMEKit
from llava_core.io import atomic_write
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import Stream, unique_ints
from llava_core.synthetic.tasks import mme_pair, mme_prompt

#: subtask -> (folder layout, image suffix): "flat" keeps images and their .txt side by side
#: (existence, count, ...), "split" uses the two split folders (scene, artwork, ...).
SUBTASKS = {"existence": ("flat", ".jpg"), "count": ("flat", ".jpg"), "position": ("flat", ".jpg"),
            "color": ("flat", ".jpg"), "scene": ("split", ".jpg"), "numerical_calculation": ("flat", ".png")}


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """About ``n`` questions, spread evenly over :data:`SUBTASKS`."""
    kit, st = KitWriter(MMEKit(), eval_root), Stream(seed, "eval-mme", image_size)
    rng = st.rng
    bench = kit.path("images")  # the release folder: images and ground truth
    per_task = max(1, n // (2 * len(SUBTASKS)))
    rows = []
    for subtask, (layout, suffix) in SUBTASKS.items():
        split = layout == "split"
        img_dir = bench / subtask / (SPLIT_IMAGES if split else "")
        qa_dir = bench / subtask / (SPLIT_ANSWERS if split else "")
        img_dir.mkdir(parents=True, exist_ok=True)
        qa_dir.mkdir(parents=True, exist_ok=True)
        for num in sorted(unique_ints(rng, per_task, 1, 600_000)):
            s = st.scene()
            name = f"{num:012d}" if suffix == ".jpg" else f"{num % 10_000:04d}"
            st.save(s, img_dir / f"{name}{suffix}")
            pair = mme_pair(rng, s, subtask)
            with atomic_write(qa_dir / f"{name}.txt") as fh:
                fh.write("".join(f"{q}{YES_NO}\t{a}\n" for q, a in pair))
            rel = f"{subtask}/{SPLIT_IMAGES + '/' if split else ''}{name}{suffix}"
            rows += [{"question_id": rel, "image": rel, "text": mme_prompt(q), "category": subtask}
                     for q, _ in pair]
    kit.jsonl("questions", rows)
    # a uniform yes/no guess: accuracy 50 and both-right-per-image (acc+) 25 in every subtask; the
    # score sums the perception subtasks
    kit.written.chance = 75.0 * sum(task in PERCEPTION for task in SUBTASKS)
    return kit.written
