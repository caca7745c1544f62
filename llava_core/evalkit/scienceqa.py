"""ScienceQA test (CQM-A): the conversation-JSON question file, problems, splits and images."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, LONG_MAX_NEW_TOKENS, Kit, KitFile


class ScienceQAKit(Kit):
    name = "scienceqa"
    title = "ScienceQA-IMG"
    label = "ScienceQA"
    paper_column = "SQA-IMG"
    folder = "scienceqa"
    files = {"questions": KitFile("llava_test_CQM-A.json", "question file", f"{EVAL_ZIP} (conversation JSON)"),
             "problems": KitFile("problems.json", "problems file", EVAL_ZIP),
             "splits": KitFile("pid_splits.json", "split file", EVAL_ZIP),
             "images": KitFile("images/test", "image folder", "ScienceQA", folder=True)}
    question_format = "json"
    answer_format = "letter"
    max_new_tokens = LONG_MAX_NEW_TOKENS
    # A uniform random letter among each question's 2-5 options: the "Random Chance" row of the
    # ScienceQA paper (Lu et al., NeurIPS 2022, table 3), IMG column (the reported subset).
    chance = 40.08
