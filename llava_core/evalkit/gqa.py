"""GQA testdev-balanced: the question file, the ground truth and GQA's image folder."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class GQAKit(Kit):
    name = "gqa"
    title = "GQA"
    paper_column = "GQA"
    folder = "gqa"
    files = {"questions": KitFile("llava_gqa_testdev_balanced.jsonl", "question file", EVAL_ZIP),
             "ground_truth": KitFile("data/testdev_balanced_questions.json", "ground truth",
                                     "GQA questions1.2.zip, a dict {questionId: {'answer': ...}}"),
             "images": KitFile("data/images", "image folder", "GQA images.zip", folder=True)}
    answer_format = "short"
    upload_file = "testdev_balanced_predictions.json"
    # Open-ended exact match: a random string matches no answer. (Constant answers score on the
    # share of questions with that answer, a property of the data, not of the format.)
    chance = 0.0
