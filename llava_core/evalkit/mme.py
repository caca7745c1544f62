"""MME: the question file and the release folder that holds the ground truth beside the images."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
              "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
YES_NO = " Please answer yes or no."
#: A subtask folder holds its images and their ``<image>.txt`` side by side, or (scene, artwork,
#: ...) in these two subfolders.
SPLIT_IMAGES, SPLIT_ANSWERS = "images", "questions_answers_YN"


class MMEKit(Kit):
    name = "mme"
    title = "MME (perception)"
    label = "MME"
    paper_column = "MME-P"
    folder = "MME"
    # "images": the MME release, which holds the ground truth beside the images
    files = {"questions": KitFile("llava_mme.jsonl", "question file", EVAL_ZIP),
             "images": KitFile("MME_Benchmark_release_version", "benchmark folder",
                               f"the MME authors: <subtask>/[{SPLIT_ANSWERS}/]<image>.txt", folder=True)}
    answer_format = "yes_no"
    upload_file = "mme_eval_tool"  # a folder: the eval_tool/answers/<exp>/<subtask>.txt files calculation.py reads
    # Every image has one "yes" and one "no" question. Uniform random answers: acc 50, acc+ 25
    # (both right with probability 1/4), 75 per subtask, 750 over the 10 perception subtasks (a
    # constant answer gets acc 50, acc+ 0: 500).
    chance = 750.0
