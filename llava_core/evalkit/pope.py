"""POPE: the question file, one label file per split and the COCO val2014 images."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class POPEKit(Kit):
    name = "pope"
    title = "POPE"
    paper_column = "POPE"
    folder = "pope"
    files = {"questions": KitFile("llava_pope_test.jsonl", "question file", EVAL_ZIP),
             "labels": KitFile("coco/coco_pope_{split}.json", "'{split}' annotation file",
                               "output/ of POPE commit e3e39262 (its random split has 2,910 lines; the current "
                               "one has 3,000)"),
             "images": KitFile("val2014", "image folder", "COCO", folder=True)}
    answer_format = "yes_no"
    # Half the labels are "yes": always answering "yes" gives precision 1/2, recall 1, so
    # F1 = 2 * (1/2 * 1) / (1/2 + 1) = 2/3 (a uniform random answerer gets F1 1/2).
    chance = 200 / 3
