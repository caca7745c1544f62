"""MMBench and MMBench-CN dev: a TSV of questions with base64 images."""

from __future__ import annotations

from pathlib import Path

from llava_core.evalkit import LETTER_SUFFIX, LONG_MAX_NEW_TOKENS, Kit, KitFile

ALL_OPTIONS = ("A", "B", "C", "D")
CN_SUFFIX = "请直接回答选项字母。"
CIRCULAR_STRIDE = 1_000_000  # the TSV holds shifted copies of question i at i + k * 1e6


class MMBenchKit(Kit):
    name = "mmbench"
    title = "MMBench"
    paper_column = "MMB"
    folder = "mmbench"
    files = {"questions": KitFile("mmbench_dev_20230712.tsv", "TSV", "MMBench (OpenCompass)")}  # with base64 images
    question_format = "tsv"
    answer_format = "letter"
    max_new_tokens = LONG_MAX_NEW_TOKENS
    # CircularEval: a k-option question counts only if all its k rotations are right, which a
    # uniform random answerer does with probability (1/k)^k: 25% (k=2), 3.7% (3), 0.39% (4); a
    # constant letter gets 0. The dev TSV's 4,377 rows over 1,164 questions (3.76 options on
    # average) put the mean between 1.2 (if every question with fewer than 4 options has 3) and
    # 3.3 (if they have 2): we take the middle.
    chance = 2.3
    suffix = LETTER_SUFFIX

    def image_folder(self, eval_root: Path | str) -> Path:
        """Where the TSV's base64 images are decoded to: ``images/<tsv stem>/`` (one file per row)."""
        return self.root(eval_root) / "images" / Path(self.files["questions"].path).stem


class MMBenchCNKit(MMBenchKit):
    name = "mmbench_cn"
    title = "MMBench-CN"
    paper_column = "MMB-CN"
    folder = "mmbench_cn"  # mmbench_cn.sh reads eval/mmbench_cn/ (Evaluation.md says eval/mmbench)
    files = {"questions": KitFile("mmbench_dev_cn_20231003.tsv", "TSV", "MMBench (OpenCompass)")}
    # The MMBench dev questions, translated: MMBench's chance level (its own option counts are unknown here).
    suffix = CN_SUFFIX
