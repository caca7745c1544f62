"""The benchmark interface and the helpers every benchmark shares.

A :class:`Benchmark` turns the official eval-kit files under ``eval_root`` (laid out as the
official ``scripts/v1_5/eval/*.sh`` expect, i.e. ``playground/data/eval``) into
:class:`EvalQuestion` items, and scores answer rows (the official answer-jsonl format) the way
the official scripts do. Benchmarks are pure Python: no model, no torch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_core.data.formats import check_coverage, read_questions
from llava_core.io import FormatError

SHORT_ANSWER_SUFFIX = "Answer the question using a single word or phrase."
LETTER_SUFFIX = "Answer with the option's letter from the given choices directly."

#: ``model_vqa_loader.py`` default; ``model_vqa.py``, ``model_vqa_science.py`` and
#: ``model_vqa_mmbench.py`` hard-code 1024.
SHORT_MAX_NEW_TOKENS = 128
LONG_MAX_NEW_TOKENS = 1024


@dataclass
class EvalQuestion:
    """One generation request: the user text that follows ``"<image>\\n"``, and its image."""

    question_id: str | int
    text: str
    image: str | None
    default_max_new_tokens: int
    extra: dict = field(default_factory=dict)


class Benchmark(ABC):
    """A benchmark of the LLaVA-1.5 table: question loading and official-style scoring."""

    name: str = ""
    title: str = ""
    paper_column: str = ""
    #: The folder under ``eval_root`` holding this benchmark's files.
    folder: str = ""

    @abstractmethod
    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        """Read the official question file(s) under ``eval_root``."""

    @abstractmethod
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> dict:
        """Score answer rows; return ``{"score", "metrics", "breakdown"[, "upload"]}``."""

    def __repr__(self) -> str:
        return f"<Benchmark {self.name!r} ({self.title})>"

    # -- helpers for subclasses ---------------------------------------------------------------

    def root(self, eval_root: Path | str) -> Path:
        """This benchmark's folder inside ``eval_root``."""
        return Path(eval_root) / self.folder

    def jsonl_questions(self, eval_root: Path, question_file: str, image_dir: str, what: str,
                        hint: str) -> list[EvalQuestion]:
        """Questions of a plain eval-kit jsonl whose ``text`` already holds the prompt suffix,
        with images under ``image_dir`` and the short-answer budget (``model_vqa_loader.py``)."""
        root = self.root(eval_root)
        rows = read_question_file(root / question_file, what, hint)
        return [EvalQuestion(r["question_id"], r["text"], image_path(root / image_dir, r.get("image")),
                             SHORT_MAX_NEW_TOKENS, {}) for r in rows]

    def answers_label(self) -> str:
        """How answer-coverage errors name the answers (they come as a list, not a file)."""
        return f"<{self.name} answers>"

    def match_answers(self, questions: list[dict], answers: list[dict]) -> dict[str, dict]:
        """Map ``str(question_id)`` -> answer row; raise :class:`FormatError` if one is missing."""
        for i, row in enumerate(answers):
            if not isinstance(row, dict) or "question_id" not in row or "text" not in row:
                raise FormatError(self.answers_label(), i + 1, "answer row needs 'question_id' and 'text'",
                                  "rows follow the official answer-jsonl format")
        return check_coverage(questions, answers, self.answers_label())

    def match_answers_per_row(self, questions: list[dict], answers: list[dict]) -> list[dict]:
        """One answer per question row, for files whose question ids repeat (MME: two questions per
        image; TextVQA: id = image id). Rows sharing an id are told apart by ``prompt`` (the official
        scripts write the question text there), falling back to their order."""
        self.match_answers(questions, answers)  # validates the rows and the coverage of ids
        queues: dict[str, list[dict]] = {}
        for a in answers:
            queues.setdefault(str(a["question_id"]), []).append(a)
        out = []
        for q in questions:
            queue = queues[str(q["question_id"])]
            if not queue:
                n = sum(str(x["question_id"]) == str(q["question_id"]) for x in questions)
                raise FormatError(self.answers_label(), None, f"question id {q['question_id']!r} appears {n} "
                                  "times in the question file but has fewer answers",
                                  "rerun generation or pass the complete answers file")
            idx = next((i for i, a in enumerate(queue) if a.get("prompt") == q["text"]), 0)
            out.append(queue.pop(idx))
        return out


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file; otherwise raise :class:`FormatError` saying what is expected."""
    if not Path(path).is_file():
        raise FormatError(path, None, f"{what} not found", hint)
    return Path(path)


def read_question_file(path: Path, what: str, hint: str = "",
                       required: tuple[str, ...] = ("question_id", "text")) -> list[dict]:
    """Read an eval-kit question jsonl after checking it exists."""
    require_file(path, what, hint)
    rows = read_questions(path, required=required)
    if not rows:
        raise FormatError(path, None, f"{what} is empty")
    return rows


def image_path(folder: Path, image: str | None) -> str | None:
    """Absolute path of ``image`` inside ``folder`` (``None`` stays ``None``)."""
    if image is None or image == "":
        return None
    return str((Path(folder) / image).absolute())


def pct(num: float, den: float) -> float:
    """``num / den * 100``; NaN for an empty denominator."""
    return num / den * 100.0 if den else math.nan


def result(score: float, metrics: dict[str, float], breakdown: dict[str, Any] | None = None,
           upload: Path | str | None = None) -> dict:
    """The dict every :meth:`Benchmark.score` returns."""
    out: dict[str, Any] = {"score": float(score), "metrics": {k: float(v) for k, v in metrics.items()},
                           "breakdown": breakdown or {}}
    if upload is not None:
        out["upload"] = str(upload)
    return out


def extra_answer_count(questions: list[dict], answers: list[dict]) -> int:
    """How many answer rows have a question_id that is not among ``questions``."""
    ids = {str(q["question_id"]) for q in questions}
    return sum(1 for a in answers if str(a["question_id"]) not in ids)


class ReviewsRequired(ValueError):
    """A GPT-judged benchmark was scored without judge output (review / grade files)."""

    def __init__(self, benchmark: str, what: str):
        super().__init__(f"{benchmark} is scored by a GPT-4 judge: run the judge first, or pass its {what} "
                         "with --reviews (a list of paths, one per judge run)")
