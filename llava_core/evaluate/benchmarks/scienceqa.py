"""ScienceQA test (CQM-A), prompted as ``model_vqa_science.py --single-pred-prompt`` and scored as
``llava/eval/eval_science_qa.py``; the paper reports the accuracy on the items with an image."""

from __future__ import annotations

import re
from pathlib import Path

from llava_core.data.formats import IMAGE_TOKEN, read_llava_records
from llava_core.evalkit import LETTER_SUFFIX
from llava_core.evalkit.scienceqa import ScienceQAKit
from llava_core.evaluate.benchmarks.base import (
    Benchmark,
    EvalQuestion,
    Score,
    image_path,
    pct,
)
from llava_core.io import FormatError, read_json

OPTIONS = ("A", "B", "C", "D", "E")
FAILED = "FAILED"
_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")


def extract_letter(pred: str) -> str:
    """``eval_science_qa.py``: the text itself if it is one of A-E; ``pred[0]`` if the text starts
    with ``"X. "``; else the single match of ``The answer is ([A-Z]).``; else ``"FAILED"``."""
    if pred in OPTIONS:
        return pred
    if len(pred) >= 3 and pred[0] in OPTIONS and pred[1:3] == ". ":
        return pred[0]
    found = _ANSWER_IS.findall(pred)
    return found[0] if len(found) == 1 else FAILED


def build_text(human_value: str) -> str:
    """The user text after ``"<image>\\n"``: ``<image>`` removed, stripped, letter instruction added."""
    return human_value.replace(IMAGE_TOKEN, "").strip() + "\n" + LETTER_SUFFIX


class ScienceQA(ScienceQAKit, Benchmark):
    def _records(self, eval_root: Path) -> list[dict]:
        path = self.require(eval_root, "questions")
        records = read_llava_records(path)
        for i, rec in enumerate(records):
            if "id" not in rec:
                raise FormatError(path, None, f"record {i}: missing 'id'")
        if not records:
            raise FormatError(path, None, f"{self.describe('questions')} is empty")
        return records

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        image_dir = self.path(eval_root, "images")
        return [EvalQuestion(rec["id"], build_text(rec["conversations"][0]["value"]),
                             image_path(image_dir, rec.get("image")), self.max_new_tokens, {})
                for rec in self._records(eval_root)]

    def _ground_truth(self, eval_root: Path, records: list[dict]) -> tuple[dict[str, str], str, dict]:
        """question id -> correct letter, from ``problems.json`` if present, else the gpt turn."""
        problems_path = self.path(eval_root, "problems")
        notes: dict = {}
        if problems_path.is_file():
            problems = read_json(problems_path)
            if not isinstance(problems, dict):
                raise FormatError(problems_path, None, "expected a dict {problem id: problem}")
            gt = {}
            for rec in records:
                pid = str(rec["id"])
                prob = problems.get(pid)
                if not isinstance(prob, dict) or not isinstance(prob.get("answer"), int) or "choices" not in prob:
                    raise FormatError(problems_path, None, f"problem {pid!r} missing, or without an integer "
                                      "'answer' and 'choices'", "use problems.json from the official eval.zip")
                answer = prob["answer"]
                if not 0 <= answer < min(len(prob["choices"]), len(OPTIONS)):
                    raise FormatError(problems_path, None, f"problem {pid!r}: answer index {answer} out of range")
                gt[pid] = OPTIONS[answer]
            splits_path = self.path(eval_root, "splits")
            if splits_path.is_file():
                test_ids = set(read_json(splits_path).get("test", []))
                notes["not_in_test_split"] = sum(str(r["id"]) not in test_ids for r in records)
            return gt, self.files["problems"].path, notes
        gt = {}
        question_file = self.files["questions"].path
        for rec in records:
            conv = rec["conversations"]
            letter = conv[1]["value"].strip() if len(conv) > 1 else ""
            if letter not in OPTIONS:
                raise FormatError(self.path(eval_root, "questions"), None, f"record id={rec['id']!r}: gpt answer "
                                  f"{letter!r} is not a letter A-E, and {self.files['problems'].path} is absent",
                                  f"put {self.files['problems'].path} beside {question_file}")
            gt[str(rec["id"])] = letter
        return gt, question_file, notes

    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        records = self._records(eval_root)
        got = self.pair([{"question_id": rec["id"]} for rec in records], answers)
        gt, gt_source, notes = self._ground_truth(eval_root, records)

        correct = img_correct = img_total = failed = 0
        for rec, ans in zip(records, got.answers, strict=True):
            letter = extract_letter(ans["text"])
            failed += letter == FAILED
            ok = letter == gt[str(rec["id"])]
            correct += ok
            if "image" in rec:
                img_total += 1
                img_correct += ok
        n = len(records)
        metrics = {"img_accuracy": pct(img_correct, img_total), "accuracy": pct(correct, n),
                   "txt_accuracy": pct(correct - img_correct, n - img_total)}
        breakdown = {"correct": correct, "total": n, "img_correct": img_correct, "img_total": img_total,
                     "failed_parse": failed, "ground_truth": gt_source, "extra_answers": got.extra, **notes}
        return Score(metrics["img_accuracy"], metrics, breakdown)
