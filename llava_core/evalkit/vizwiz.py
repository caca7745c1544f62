"""VizWiz test: the question file, the images and (optional, EvalAI only) the annotations."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class VizWizKit(Kit):
    name = "vizwiz"
    title = "VizWiz"
    paper_column = "VizWiz"
    folder = "vizwiz"
    files = {"questions": KitFile("llava_test.jsonl", "question file", EVAL_ZIP),
             "images": KitFile("test", "image folder", "VizWiz", folder=True),
             # optional: the test answers are on EvalAI only; with them the score is local
             "annotations": KitFile("test_annotations.json", "annotation file",
                                    "not public for test (EvalAI); VizWiz's format [{image, answers: "
                                    "[{answer}] x10}]")}
    answer_format = "short"
    upload_file = "vizwiz_test_upload.json"
    # Open-ended: a random string matches no answer. (A constant "unanswerable" scores on the
    # unanswerable share of the test set, a property of the data, not of the format.)
    chance = 0.0
