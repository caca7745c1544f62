"""ScienceQA test (CQM-A): multiple-choice problems about the shape or its colour, and text-only
arithmetic ones, as conversation records plus ``problems.json`` and ``pid_splits.json``."""

from __future__ import annotations

from pathlib import Path

from llava_core.data.formats import IMAGE_TOKEN
from llava_core.evalkit.scienceqa import ScienceQAKit
from llava_core.synthetic.benchmarks.common import KitWriter, Written
from llava_core.synthetic.scenes import COLORS, SHAPES, Stream, option_lines, unique_ints

IMAGE_NAME = "image.png"  # every problem's image, in a folder named after the problem


def write(eval_root: Path, seed: int, image_size: int, n: int) -> Written:
    """``n`` problems; about 20% are text-only, as in the real test split. ``rows``: ``questions``
    (the conversation records) and ``problems``."""
    kit, st = KitWriter(ScienceQAKit(), eval_root), Stream(seed, "eval-scienceqa", image_size)
    rng = st.rng
    pids = sorted(unique_ints(rng, n, 1, 25_000))
    n_text = max(1, n // 5) if n else 0
    text_only = set(rng.sample(pids, n_text))
    records, problems, odds = [], {}, []
    for pid_num in pids:
        pid = str(pid_num)
        if pid_num in text_only:
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            question, answer, hint = f"What is {a} plus {b}?", str(a + b), ""
            pool = [str(v) for v in range(2, 19)]
            topic, image = "arithmetic", None
        else:
            s = st.scene()
            if rng.random() < 0.5:
                question, answer, pool = "Which shape is shown?", s.shape, list(SHAPES)
            else:
                question, answer, pool = "Which color is the shape?", s.color, list(COLORS)
            hint = rng.choice(("", "", "The picture shows one object on a plain background."))
            topic, image = "shapes", IMAGE_NAME
            folder = kit.path("images") / pid
            folder.mkdir(parents=True, exist_ok=True)
            st.save(s, folder / IMAGE_NAME)
        choices = [answer, *rng.sample([p for p in pool if p != answer], rng.choice((1, 2, 3)))]
        rng.shuffle(choices)
        idx = choices.index(answer)
        if image:
            odds.append(1 / len(choices))
        prompt = (f"Context: {hint}\n" if hint else "") + f"{question}\n{option_lines(choices)}"
        rec: dict = {"id": pid}
        if image:
            rec["image"] = f"{pid}/{IMAGE_NAME}"
            prompt = f"{IMAGE_TOKEN}\n{prompt}"
        rec["conversations"] = [{"from": "human", "value": prompt}, {"from": "gpt", "value": chr(65 + idx)}]
        records.append(rec)
        problems[pid] = {"question": question, "choices": choices, "answer": idx, "hint": hint,
                         "image": image,
                         "task": "closed choice", "grade": "grade1", "subject": "natural science",
                         "topic": topic, "category": topic.capitalize(), "skill": f"Identify {topic}",
                         "lecture": "", "solution": f"The answer is {answer}.", "split": "test"}
    kit.json("questions", records, n=len(records), indent=1)
    kit.json("problems", problems, n=len(problems))
    splits = {k: [] for k in ("train", "val", "minitrain", "minival", "trainval")}
    splits.update(test=[str(p) for p in pids], minitest=[str(p) for p in pids])
    kit.json("splits", splits)
    kit.written.rows.update(questions=records, problems=problems)
    kit.written.chance = 100.0 * sum(odds) / len(odds)  # the score is the image questions' accuracy
    return kit.written
