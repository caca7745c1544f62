"""MM-Vet: the question file, the grader's metadata and the images."""

from __future__ import annotations

from llava_core.evalkit import EVAL_ZIP, LONG_MAX_NEW_TOKENS, Kit, KitFile


def grader_key(question_id: str | int) -> str:
    """The key of a question in the MM-Vet grader's files: ``v1_<question_id>``."""
    return f"v1_{question_id}"


class MMVetKit(Kit):
    name = "mm_vet"
    title = "MM-Vet"
    paper_column = "MM-Vet"
    folder = "mm-vet"  # mmvet.sh uses eval/mm-vet (Evaluation.md says eval/mmvet)
    # metadata: the grader's ground truths and each question's capabilities
    files = {"questions": KitFile("llava-mm-vet.jsonl", "question file", f"{EVAL_ZIP}; images from mm-vet.zip"),
             "metadata": KitFile("mm-vet.json", "metadata file", "mm-vet.zip"),
             "images": KitFile("images", "image folder", "mm-vet.zip", folder=True)}
    answer_format = "long"
    judged = True
    max_new_tokens = LONG_MAX_NEW_TOKENS
    upload_file = "mm-vet_results.json"  # the grader's input
    # Open-ended, graded 0-1 against the ground truth: a random answer gets 0.
    chance = 0.0
