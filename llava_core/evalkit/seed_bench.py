"""SEED-Bench (v1): the question file, the annotations, the images and the video middle frames."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class SEEDBenchKit(Kit):
    name = "seed_bench"
    title = "SEED-Bench"
    paper_column = "SEED"
    folder = "seed_bench"
    # no "images": the question file's image paths start with their folder
    files = {"questions": KitFile("llava-seed-bench.jsonl", "question file", EVAL_ZIP),
             "annotations": KitFile("SEED-Bench.json", "annotation file",
                                    "the SEED-Bench release ({'questions': [...], 'question_type': {...}})"),
             "image_folder": KitFile("SEED-Bench-image", "image folder", "the SEED-Bench release", folder=True),
             "video_frame_folder": KitFile("SEED-Bench-video-image", "video frame folder",
                                           "extract_video_frames.py (the middle frames)", folder=True)}
    answer_format = "letter"
    upload_file = "seed_bench_upload.jsonl"
    # Every question has 4 options and the answer must be the letter exactly: a uniform random
    # letter is right 1/4 of the time (so is a constant one, on balanced answers).
    chance = 25.0
