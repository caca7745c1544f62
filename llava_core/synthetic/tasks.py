"""One question about one scene in one benchmark's prompt format, with its answer.

The eval writers ask these about held-out images; the stage-2 mixture asks the same kinds about
its own images, as LLaVA's mix665k holds the train splits of VQAv2, GQA, OCR-VQA, A-OKVQA and more
in the benchmarks' own formats. So the tiny model learns every answer format, and what it answers
depends on the image: the eval scores say whether the pipeline works, not whether a prompt happened
to match.
"""

from __future__ import annotations

import random

from llava_core.evalkit.mmbench import CN_SUFFIX
from llava_core.synthetic.scenes import (
    BACKGROUNDS,
    COLORS,
    LETTER_ANSWER,
    SHAPES,
    SHORT_ANSWER,
    Scene,
    article,
    distractor,
    option_lines,
)

COLORS_CN = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色", "orange": "橙色",
             "white": "白色", "black": "黑色"}
SHAPES_CN = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "cross": "十字形"}
#: VizWiz's instruction, and the share of its images that show nothing to answer about.
UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
VIZWIZ_UNANSWERABLE = 0.25
#: How a POPE negative differs from the scene: in the colour, the shape, or both.
POPE_NEGATIVES = ("color", "shape", "both")
MME_SUBTASKS = ("existence", "count", "position", "color", "scene", "numerical_calculation")
MC_STYLES = ("scienceqa", "mmbench", "mmbench_cn", "seed")
DETAIL_PROMPTS = ("Describe the image.", "Describe the image in detail.", "What do you see in this picture?",
                  "Explain the visual content of the image.")


def short_qa(rng: random.Random, s: Scene) -> tuple[str, str]:
    """A VQAv2/GQA-style question about ``s`` and its one-word answer (lowercase); an existence
    question is answered yes or no at random, independently of any other question."""
    kind = rng.choice(("color", "color", "shape", "background", "exist"))
    if kind == "color":
        return rng.choice(("What color is the shape?", f"What color is the {s.shape}?")), s.color
    if kind == "shape":
        return rng.choice(("What shape is shown?", "Which shape is in the image?")), s.shape
    if kind == "background":
        return "What color is the background?", s.background
    if rng.random() < 0.5:
        return f"Is there {article(s.color)} {s.shape} in the image?", "yes"
    color, shape = distractor(rng, s, rng.choice(("color", "shape")))
    return f"Is there {article(color)} {shape} in the image?", "no"


def guess_odds(answer: str, unanswerable: bool = False) -> float:
    """The odds that a blind guess among the answers of ``answer``'s kind (colours, shapes,
    backgrounds or yes/no) hits it; ``unanswerable``: "unanswerable" is one more possible answer."""
    pools = (COLORS, SHAPES, BACKGROUNDS, ("yes", "no"))
    return 1 / (next(len(p) for p in pools if answer.lower() in p) + unanswerable)


def vizwiz(rng: random.Random, s: Scene) -> tuple[str, str, float]:
    """A VizWiz prompt (a short question, the unanswerable instruction), its answer (a question about
    the shape of a blank image is unanswerable) and the odds of a blind guess."""
    q, a = rng.choice((("What color is the shape?", s.color), ("What shape is shown?", s.shape),
                       ("What color is the background?", s.background)))
    about_shape = "background" not in q
    odds = guess_odds(a, unanswerable=about_shape)
    if s.blank and about_shape:
        a = "unanswerable"
    return f"{q}\n{UNANSWERABLE}\n{SHORT_ANSWER}", a.capitalize(), odds


def textvqa(rng: random.Random, s: Scene) -> tuple[str, str, list[str]]:
    """A TextVQA prompt: a colour question with a ``Reference OCR token:`` line naming 2-3 colours,
    the right one among them (the tiny world has no text: its "OCR" reads colour words)."""
    question = rng.choice(("What color is the shape?", f"What color is the {s.shape}?",
                           "What color is written on the shape?"))
    ocr = [s.color.upper(), *rng.sample([c.upper() for c in COLORS if c != s.color], rng.choice((1, 2)))]
    rng.shuffle(ocr)
    return f"{question}\nReference OCR token: {', '.join(ocr)}\n{SHORT_ANSWER}", s.color, ocr


def pope(rng: random.Random, s: Scene, yes: bool, negative: str = "any",
         pair: tuple[str, str] | None = None) -> tuple[str, str]:
    """A POPE question: is there a (colour, shape) in the image. A "no" asks about ``pair`` or a
    pair that differs from the scene as ``negative`` says (see :func:`distractor`)."""
    color, shape = (s.color, s.shape) if yes else pair or distractor(rng, s, negative)
    return f"Is there {article(color)} {shape} in the image?\n{SHORT_ANSWER}", "Yes" if yes else "No"


def mme_pair(rng: random.Random, s: Scene, subtask: str) -> list[tuple[str, str]]:
    """MME's two questions about one image (one "Yes", one "No", in a random order), as the
    official question (without " Please answer yes or no.") and its answer."""
    if subtask == "existence":
        _, shape = distractor(rng, s, "shape")
        pair = [(f"Is there a {s.shape} in this image?", "Yes"), (f"Is there a {shape} in this image?", "No")]
    elif subtask == "count":  # every image holds one shape: the pair differs in which shape is counted,
        _, shape = distractor(rng, s, "shape")  # so the question's wording does not give the answer away
        pair = [(f"Is there only one {s.shape} in the image?", "Yes"),
                (f"Is there only one {shape} in the image?", "No")]
    elif subtask == "position":
        side, other = ("left", "right") if s.cx < 0.5 else ("right", "left")
        pair = [(f"Is the {s.shape} on the {side} side of the image?", "Yes"),
                (f"Is the {s.shape} on the {other} side of the image?", "No")]
    elif subtask == "color":
        color, _ = distractor(rng, s, "color")
        pair = [(f"Is there {article(s.color)} {s.shape} in the image?", "Yes"),
                (f"Is there {article(color)} {s.shape} in the image?", "No")]
    elif subtask == "scene":
        other = rng.choice([b for b in BACKGROUNDS if b != s.background])
        pair = [(f"Is this picture taken in front of a {s.background} background?", "Yes"),
                (f"Is this picture taken in front of a {other} background?", "No")]
    else:  # numerical_calculation: the arithmetic is in the question, the image only shows a shape
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        wrong = a + b + rng.choice((-2, -1, 1, 2))
        pair = [(f"Is the answer to {a} plus {b} equal to {a + b}?", "Yes"),
                (f"Is the answer to {a} plus {b} equal to {wrong}?", "No")]
    rng.shuffle(pair)
    return pair


def mme_prompt(question: str) -> str:
    """The prompt of an MME question in ``llava_mme.jsonl``."""
    return f"{question}\n{SHORT_ANSWER}"


def choices(rng: random.Random, answer: str, pool: list[str], n_other: int) -> list[str]:
    """``answer`` and ``n_other`` other values of ``pool``, shuffled."""
    out = [answer, *rng.sample([p for p in pool if p != answer], n_other)]
    rng.shuffle(out)
    return out


def multiple_choice(rng: random.Random, s: Scene, style: str) -> tuple[str, str, int]:
    """A multiple-choice prompt in the layout of ``style`` (``scienceqa``, ``mmbench``,
    ``mmbench_cn`` or ``seed``), its answer letter and its number of options."""
    kind = rng.choice(("color", "color", "shape", "background") if style == "seed" else ("color", "shape"))
    answer, pool = s.attribute(kind)
    if style == "mmbench_cn":
        names = COLORS_CN if kind == "color" else SHAPES_CN
        answer, pool = names[answer], list(names.values())
    n_other = 3 if style == "seed" else rng.choice((1, 2, 3, 3))
    options = choices(rng, answer, pool, n_other)
    if style == "scienceqa":
        q = "Which shape is shown?" if kind == "shape" else "Which color is the shape?"
        hint = rng.choice(("", "", "The picture shows one object on a plain background."))
        text = (f"Context: {hint}\n" if hint else "") + f"{q}\n{option_lines(options)}\n{LETTER_ANSWER}"
    elif style in ("mmbench", "mmbench_cn"):
        cn = style == "mmbench_cn"
        q = {("color", False): f"What color is the {s.shape}?", ("shape", False): "Which shape is shown in the image?",
             ("color", True): "图中形状是什么颜色？", ("shape", True): "图中是什么形状？"}[(kind, cn)]
        hint = rng.choice(("", "", "图中只有一个物体。" if cn else "The picture shows one object."))
        text = (f"{hint}\n" if hint else "") + f"{q}\n{option_lines(options)}\n{CN_SUFFIX if cn else LETTER_ANSWER}"
    else:
        q = {"color": f"What is the color of the {s.shape}?", "shape": "What object is shown in the image?",
             "background": "What color is the background?"}[kind]
        text = f"{q}\n{option_lines(options)}\n{LETTER_ANSWER}"
    return text, chr(65 + options.index(answer)), len(options)


def description(s: Scene) -> str:
    """A detailed description of ``s`` (LLaVA-Bench's "detail" reference answer)."""
    return (f"The image shows {article(s.size_word)} {s.color} {s.shape} on a plain {s.background} background. "
            f"The {s.shape} is {s.where} of the picture.")


def side(s: Scene) -> str:
    return "left" if s.cx < 0.5 else "right"


def open_questions(s: Scene) -> list[tuple[str, str]]:
    """Open questions answered in sentences (LLaVA-Bench's conv and complex, MM-Vet's), each with
    an answer that holds the words a judge looks for."""
    return [
        (f"What color is the {s.shape}?", f"The {s.shape} is {s.color}."),
        ("What would change if the shape were painted in the color of the background?",
         f"The {s.color} {s.shape} would be hard to see, because it would blend into the {s.background} background."),
        ("What shape is in the image?", f"The image shows {article(s.color)} {s.shape}."),
        ("What are the color and the shape of the object?", f"The object is {article(s.color)} {s.shape}."),
        ("What color is the background?", f"The background is {s.background}."),
        (f"Is the {s.shape} on the left or on the right?", f"The {s.shape} is on the {side(s)} side."),
        (f"Where is the {s.shape} located?", f"The {s.shape} is located {s.where} of the image."),
    ]


def conversation(rng: random.Random, s: Scene) -> list[tuple[str, str]]:
    """A detailed description, or 2-3 open questions, about ``s``; ``<image>`` before or after the
    first question, as LLaVA's conversation data has it."""
    if rng.random() < 0.4:
        turns = [(rng.choice(DETAIL_PROMPTS), description(s))]
    else:
        turns = rng.sample(open_questions(s), rng.choice((2, 3)))
    q = turns[0][0]
    turns[0] = (f"<image>\n{q}" if rng.random() < 0.5 else f"{q}\n<image>", turns[0][1])
    return turns
