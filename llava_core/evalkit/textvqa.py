"""TextVQA val v0.5.1: prompts with OCR tokens, the annotation file and the images."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, Kit, KitFile


class TextVQAKit(Kit):
    name = "textvqa"
    title = "TextVQA"
    paper_column = "TextVQA"
    folder = "textvqa"
    files = {"questions": KitFile("llava_textvqa_val_v051_ocr.jsonl", "question file",
                                  f"{EVAL_ZIP} (prompts with OCR tokens)"),
             "annotations": KitFile("TextVQA_0.5.1_val.json", "annotation file",
                                    "textvqa.org ({'data': [{image_id, question, answers}]})"),
             "images": KitFile("train_images", "image folder", "TextVQA train_val_images.zip", folder=True)}
    answer_format = "short"
    # Open-ended soft accuracy: a random string matches none of the 10 human answers.
    chance = 0.0
