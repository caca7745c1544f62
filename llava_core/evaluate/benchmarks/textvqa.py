"""TextVQA val v0.5.1 with Rosetta OCR tokens in the prompt, scored as ``llava/eval/eval_textvqa.py``
(m4c ``TextVQAAccuracyEvaluator``: EvalAI normalisation and leave-one-out soft accuracy)."""

from __future__ import annotations

import re
from pathlib import Path

from llava_core.evalkit.textvqa import TextVQAKit
from llava_core.evaluate.benchmarks.answer_processing import vqa_accuracy
from llava_core.evaluate.benchmarks.base import Benchmark, Score
from llava_core.io import FormatError, read_json

_OCR_FIRST = re.compile(r"Question: (.*?) Short answer:", re.DOTALL)


def question_from_prompt(prompt: str) -> str | None:
    """The question inside a prompt, lowercased (``prompt_processor`` of ``eval_textvqa.py``);
    ``None`` for a layout upstream rejects."""
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        match = _OCR_FIRST.search(prompt)
        question = match.group(1) if match else None
    elif "Reference OCR token: " in prompt and len(lines) == 3:
        question = lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    elif len(lines) == 2:
        question = lines[0]
    else:
        question = None
    return None if question is None else question.lower()


class TextVQA(TextVQAKit, Benchmark):
    def _annotations(self, eval_root: Path) -> dict[tuple[str, str], list[str]]:
        path = self.require(eval_root, "annotations")
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise FormatError(path, None, "expected {'data': [...]} (the official TextVQA annotation format)")
        out = {}
        for i, ann in enumerate(data["data"]):
            if not all(k in ann for k in ("image_id", "question", "answers")):
                raise FormatError(path, None, f"data[{i}]: needs 'image_id', 'question' and 'answers'")
            out[(str(ann["image_id"]), ann["question"].lower())] = ann["answers"]
        return out

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        got = self.answered(eval_root, answers, per_row=True)
        annotations = self._annotations(eval_root)
        ann_path = self.path(eval_root, "annotations")

        total = 0.0
        for q, ans in got.pairs():
            question = question_from_prompt(q["text"])
            if question is None:
                raise FormatError(self.path(eval_root, "questions"), None, f"question {q['question_id']!r}: "
                                  "prompt layout not understood by eval_textvqa.py", "question, OCR line, suffix line")
            gts = annotations.get((str(q["question_id"]), question))
            if gts is None:
                raise FormatError(ann_path, None, f"no annotation for image_id={q['question_id']!r} "
                                  f"question={question!r}")
            if len(gts) != 10:
                raise FormatError(ann_path, None, f"image_id={q['question_id']!r}: {len(gts)} answers, "
                                  "the evaluator expects 10")
            total += vqa_accuracy(ans["text"], gts)
        accuracy = total / len(got.questions) * 100.0
        return Score(accuracy, {"accuracy": accuracy}, {"total": len(got.questions), "extra_answers": got.extra})
