"""VQAv2 test-dev: the question files (test-dev, and the full test2015 the upload must cover), COCO test2015 images, optional annotations."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class VQAv2Kit(Kit):
    name = "vqav2"
    title = "VQAv2"
    paper_column = "VQAv2"
    folder = "vqav2"
    files = {"questions": KitFile("llava_vqav2_mscoco_test-dev2015.jsonl", "test-dev question file", EVAL_ZIP),
             "full_test": KitFile("llava_vqav2_mscoco_test2015.jsonl", "full test2015 question file",
                                  f"{EVAL_ZIP}: the upload must cover it"),
             "images": KitFile("test2015", "image folder", "COCO", folder=True),
             # optional: EvalAI keeps the real test-dev answers; with them the score is local
             "annotations": KitFile("v2_mscoco_test-dev2015_annotations.json", "annotation file",
                                    "not public for test-dev (EvalAI); the VQA format {'annotations': "
                                    "[{question_id, answers: [{answer}] x10}]}")}
    answer_format = "short"
    upload_file = "vqav2_test-dev2015_upload.json"
    # Open-ended: a random string matches no human answer. (A constant "yes" does better, as some
    # questions are yes/no, but that depends on the answer distribution, not on the format.)
    chance = 0.0
