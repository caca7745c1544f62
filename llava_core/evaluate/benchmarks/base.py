"""The benchmark interface and the helpers every benchmark shares.

A :class:`Benchmark` turns the official eval-kit files under ``eval_root`` into
:class:`EvalQuestion` items, and scores answer rows (the official answer-jsonl format) the way
the official scripts do, returning a :class:`Score`. Benchmarks are pure Python: no model, no torch.

What a benchmark's files are, where they come from, its answer format and chance level are its
**kit** (``llava_core/evalkit``: plain declarations, which the data stages read too); each
benchmark class here inherits its kit and adds the code: loading, prompting and scoring. The
plain-jsonl benchmarks need no loader of their own.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llava_core.data.formats import check_coverage, read_questions
from llava_core.evalkit import QUESTIONS, Kit
from llava_core.io import FormatError, write_json, write_jsonl

QUESTION_FIELDS = ("question_id", "text")


@dataclass
class EvalQuestion:
    """One generation request: the user text that follows ``"<image>\\n"``, and its image."""

    question_id: str | int
    text: str
    image: str | None
    default_max_new_tokens: int
    extra: dict = field(default_factory=dict)


@dataclass
class Score:
    """What :meth:`Benchmark.score` returns: the reported number, every metric, the details, and the
    upload (or grader input) file when one was written. NaN ``score``: only a server can score it."""

    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)
    upload: Path | None = None

    def __post_init__(self) -> None:
        self.score = float(self.score)
        self.metrics = {k: float(v) for k, v in self.metrics.items()}
        self.upload = None if self.upload is None else Path(self.upload)

    def to_dict(self) -> dict:
        """``{"score", "metrics", "breakdown"[, "upload"]}``: the shape of ``scores.json``."""
        out: dict[str, Any] = {"score": self.score, "metrics": dict(self.metrics), "breakdown": self.breakdown}
        if self.upload is not None:
            out["upload"] = str(self.upload)
        return out


@dataclass
class Answered:
    """Question rows paired with their answers (``answers[i]`` answers ``questions[i]``), and how many
    answer rows answer no question (reported as ``extra_answers``)."""

    questions: list[dict]
    answers: list[dict]
    extra: int

    def pairs(self) -> list[tuple[dict, dict]]:
        return list(zip(self.questions, self.answers, strict=True))


class Benchmark(Kit, ABC):
    """A benchmark of the LLaVA-1.5 table: its kit's declarations (inherited), question loading and
    official-style scoring. A benchmark class lists its kit first: ``class POPE(POPEKit, Benchmark)``."""

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        """The declared question jsonl, whose ``text`` already holds the prompt suffix, with images
        under the declared ``images`` folder (``model_vqa_loader.py``, ``model_vqa.py``)."""
        image_dir = self.image_folder(eval_root)
        return [EvalQuestion(r["question_id"], r["text"], image_path(image_dir, r.get("image")),
                             self.max_new_tokens, {}) for r in self.question_rows(eval_root)]

    @abstractmethod
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Score answer rows (writing any upload file into ``out_dir``)."""

    def judge_answers(self, judge_cfg, eval_root: Path, answers: list[dict], out_dir: Path, *, model_name: str,
                      backend=None) -> tuple[list[Path], dict, dict]:
        """Run the LLM judge on ``answers``: (review files for :meth:`score`, what the judge did, its
        MLflow params). Only judged benchmarks (``evaluate/judge.py``'s ``JudgedBenchmark``) have one."""
        raise NotImplementedError(f"{self.title} is not judged")

    def __repr__(self) -> str:
        return f"<Benchmark {self.name!r} ({self.title})>"

    # -- reading the question file ----------------------------------------------------------

    def question_rows(self, eval_root: Path | str, role: str = QUESTIONS,
                      required: tuple[str, ...] = QUESTION_FIELDS) -> list[dict]:
        """The rows of a question jsonl, checked to exist, to hold ``required`` and not to be empty."""
        path = self.require(eval_root, role)
        rows = read_questions(path, required=required)
        if not rows:
            raise FormatError(path, None, f"{self.describe(role)} is empty")
        return rows

    # -- shared parts of scoring --------------------------------------------------------------

    def answered(self, eval_root: Path | str, answers: list[dict], *, required: tuple[str, ...] = QUESTION_FIELDS,
                 per_row: bool = False) -> Answered:
        """The declared questions paired with ``answers`` (see :meth:`pair`)."""
        return self.pair(self.question_rows(eval_root, required=required), answers, per_row=per_row)

    def pair(self, questions: list[dict], answers: list[dict], *, per_row: bool = False) -> Answered:
        """Pair each question with its answer; :class:`FormatError` if one has none. ``per_row`` for
        question files whose ids repeat (see :meth:`match_answers_per_row`)."""
        if per_row:
            matched = self.match_answers_per_row(questions, answers)
        else:
            by_id = self.match_answers(questions, answers)
            matched = [by_id[str(q["question_id"])] for q in questions]
        return Answered(questions, matched, extra_answer_count(questions, answers))

    def write_upload(self, out_dir: Path | str | None, rows: list[dict]) -> Path | None:
        """Write ``rows`` to ``out_dir / upload_file`` (JSON lines for ``.jsonl``, else one-line JSON);
        nothing, and ``None``, without ``out_dir``."""
        if out_dir is None:
            return None
        path = Path(out_dir) / self.upload_file
        if path.suffix == ".jsonl":
            write_jsonl(path, rows)
        else:
            write_json(path, rows, indent=None)
        return path

    def need_reviews(self, reviews: list[Path] | None, what: str) -> list[Path]:
        """A judged benchmark's judge output, or :class:`ReviewsRequired` naming ``what`` it is."""
        if not reviews:
            raise ReviewsRequired(self.title, what)
        return reviews

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


def image_path(folder: Path, image: str | None) -> str | None:
    """Absolute path of ``image`` inside ``folder`` (``None`` stays ``None``)."""
    if image is None or image == "":
        return None
    return str((Path(folder) / image).absolute())


def pct(num: float, den: float) -> float:
    """``num / den * 100``; NaN for an empty denominator."""
    return num / den * 100.0 if den else math.nan


def extra_answer_count(questions: list[dict], answers: list[dict]) -> int:
    """How many answer rows have a question_id that is not among ``questions``."""
    ids = {str(q["question_id"]) for q in questions}
    return sum(1 for a in answers if str(a["question_id"]) not in ids)


class ReviewsRequired(ValueError):
    """A GPT-judged benchmark was scored without judge output (review / grade files)."""

    def __init__(self, benchmark: str, what: str):
        super().__init__(f"{benchmark} is scored by a GPT-4 judge: run the judge first, or pass its {what} "
                         "with --reviews (a list of paths, one per judge run)")
