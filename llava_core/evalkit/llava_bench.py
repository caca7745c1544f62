"""LLaVA-Bench-in-the-Wild: questions, the captions the judge reads, GPT-4's reference answers, images."""

from __future__ import annotations

from llava_core.evalkit import LONG_MAX_NEW_TOKENS, Kit, KitFile

CATEGORY_PREFIX = "llava_bench_"
HF_DATASET = "HF liuhaotian/llava-bench-in-the-wild"


class LLaVABenchKit(Kit):
    name = "llava_bench"
    title = "LLaVA-Bench (In-the-Wild)"
    label = "LLaVA-Bench"
    paper_column = "LLaVA-W"
    folder = "llava-bench-in-the-wild"
    # context and references: what the judge reads (the caption of each image, the GPT-4 answers)
    files = {"questions": KitFile("questions.jsonl", "question file", HF_DATASET),
             "context": KitFile("context.jsonl", "context file", HF_DATASET),
             "references": KitFile("answers_gpt4.jsonl", "reference answer file", HF_DATASET),
             "images": KitFile("images", "image folder", HF_DATASET, folder=True)}
    answer_format = "long"
    judged = True
    max_new_tokens = LONG_MAX_NEW_TOKENS
    # Open-ended and judged: no answer set to draw from, so 0. (In practice the floor is above 0:
    # the judge scores every answer at least 1 of 10.)
    chance = 0.0
