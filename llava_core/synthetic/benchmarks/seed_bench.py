"""SEED-Bench: 4-option questions about image scenes, and about a quarter "video" ones (Action
Recognition, asked about the middle frame, as ``extract_video_frames.py`` writes it)."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit.seed_bench import SEEDBenchKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import (
    COLORS,
    LETTER_ANSWER,
    SHAPES,
    Stream,
    article,
    option_lines,
    unique_ints,
)

#: SEED-Bench v1's question types and their ids.
TYPES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3, "Instance Location": 4,
         "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
         "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11,
         "Procedure Understanding": 12}

#: The image question types asked: what they ask about, and how.
IMAGE_QUESTIONS = {"Instance Attributes": ("color", "What is the color of the {shape}?"),
                   "Instance Identity": ("shape", "What object is shown in the image?"),
                   "Scene Understanding": ("background", "What color is the background?")}


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    kit, st = KitWriter(SEEDBenchKit(), eval_root), Stream(seed, "eval-seed", image_size)
    rng = st.rng
    folders = {"image": kit.folder("image_folder"), "video": kit.folder("video_frame_folder")}  # both, always
    rows, questions = [], []
    n_video = max(1, n // 4) if n else 0
    kinds = ["video"] * n_video + ["image"] * (n - n_video)
    rng.shuffle(kinds)
    qids = unique_ints(rng, n, 1, 110_000)
    for qid_num, kind in zip(qids, kinds, strict=True):
        s = st.scene()
        if kind == "video":
            type_name, question = "Action Recognition", "What is the shape doing in the video?"
            answer = f"Showing {article(s.color)} {s.shape}"
            pool = [f"Showing {article(c)} {x}" for c in COLORS for x in SHAPES if (c, x) != (s.color, s.shape)]
            data_id = f"{rng.randint(1, 220_000)}.webm"
            name = f"{data_id.split('.')[0]}.png"
        else:
            type_name = rng.choice(tuple(IMAGE_QUESTIONS))
            about, question = IMAGE_QUESTIONS[type_name]
            question = question.format(shape=s.shape)
            answer, pool = s.attribute(about)
            data_id = f"{rng.randint(1_000_000, 9_999_999)}_{rng.randint(1_000_000_000, 9_999_999_999)}.jpg"
            name = data_id
        choices = [answer, *rng.sample([p for p in pool if p != answer], 3)]
        rng.shuffle(choices)
        letter = "ABCD"[choices.index(answer)]
        st.save(s, folders[kind] / name)
        qid = str(qid_num)
        rows.append({"image": (folders[kind] / name).relative_to(kit.root).as_posix(),
                     "text": f"{question}\n{option_lines(choices)}\n{LETTER_ANSWER}",
                     "category": type_name, "question_id": qid})
        questions.append({"answer": letter, **{f"choice_{c}": v for c, v in zip("abcd", choices, strict=True)},
                          "data_id": data_id, "data_type": kind, "question": question, "question_id": qid,
                          "question_type_id": TYPES[type_name]})
        if kind == "video":
            questions[-1]["segment"] = None
    kit.jsonl("questions", rows)
    kit.json("annotations", {"question_type": TYPES, "questions": questions}, n=len(questions))
    kit.written.chance = 25.0  # 4 options each
    return kit.written
