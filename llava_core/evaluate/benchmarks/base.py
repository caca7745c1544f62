"""The benchmark interface and the helpers every benchmark shares.

A :class:`Benchmark` turns the official eval-kit files under ``eval_root`` (laid out as the
official ``scripts/v1_5/eval/*.sh`` expect, i.e. ``playground/data/eval``) into
:class:`EvalQuestion` items, and scores answer rows (the official answer-jsonl format) the way
the official scripts do, returning a :class:`Score`. Benchmarks are pure Python: no model, no torch.

Benchmarks declare, the base class does. Each benchmark module declares as class attributes its
``folder`` under ``eval_root``, its eval-kit ``files`` (a mapping of role -> :class:`KitFile`), its
``answer_format``, whether it is ``judged`` by an LLM and its ``chance`` level; the base class turns
the declarations into paths, "not found" errors with their hints, and question loading (the
plain-jsonl benchmarks need no loader of their own). The synthetic world's writers
(:mod:`llava_core.data.synthetic.benchmarks`) take their file names from the same declarations.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from llava_core.data.formats import check_coverage, read_questions
from llava_core.io import FormatError, read_json, write_json, write_jsonl

SHORT_ANSWER_SUFFIX = "Answer the question using a single word or phrase."
LETTER_SUFFIX = "Answer with the option's letter from the given choices directly."

#: ``model_vqa_loader.py`` default; ``model_vqa.py``, ``model_vqa_science.py`` and
#: ``model_vqa_mmbench.py`` hard-code 1024.
SHORT_MAX_NEW_TOKENS = 128
LONG_MAX_NEW_TOKENS = 1024

#: What a benchmark expects as an answer: ``yes_no`` (POPE, MME), ``letter`` (an option letter:
#: ScienceQA, MMBench, SEED), ``short`` (a word or phrase: VQAv2, GQA, VizWiz, TextVQA), ``long``
#: (free text for a judge: LLaVA-Bench, MM-Vet).
ANSWER_FORMATS = ("yes_no", "letter", "short", "long")
#: Where most question files come from.
EVAL_ZIP = "the official eval.zip"
#: The roles every question-file benchmark uses: the question file, and the folder its ``image``
#: fields are relative to (the benchmark folder itself when not declared).
QUESTIONS, IMAGES = "questions", "images"
#: An eval kit may declare its own chance levels here, ``{benchmark: score}`` (the synthetic world
#: does: its question sets, option counts and subtasks differ from the official ones).
CHANCE_FILE = "chance.json"
QUESTION_FIELDS = ("question_id", "text")


@dataclass
class EvalQuestion:
    """One generation request: the user text that follows ``"<image>\\n"``, and its image."""

    question_id: str | int
    text: str
    image: str | None
    default_max_new_tokens: int
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class KitFile:
    """One file (or folder) of a benchmark's eval-kit layout.

    ``path`` is relative to the benchmark's folder and may hold ``{fields}`` (POPE's
    ``coco/coco_pope_{split}.json``); ``what`` names it in errors after the benchmark's label
    ("GQA" + "ground truth"); ``source`` says where it comes from (the errors' hint).
    """

    path: str
    what: str
    source: str = ""
    folder: bool = False

    @property
    def hint(self) -> str:
        """``"<path> from <source>"``: what a "not found" error suggests."""
        return f"{self.path} from {self.source}" if self.source else ""


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


class Benchmark(ABC):
    """A benchmark of the LLaVA-1.5 table: declared files, question loading and official-style scoring."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: How messages name the benchmark ("MME question file not found"); the title when empty.
    label: ClassVar[str] = ""
    paper_column: ClassVar[str] = ""
    #: The folder under ``eval_root`` holding this benchmark's files.
    folder: ClassVar[str] = ""
    #: The eval-kit files by role; the base class reads ``questions`` and resolves images in ``images``.
    files: ClassVar[Mapping[str, KitFile]] = {}
    #: One of :data:`ANSWER_FORMATS`.
    answer_format: ClassVar[str] = ""
    #: Scored from an LLM judge's output (``reviews``).
    judged: ClassVar[bool] = False
    #: The score a random or constant answerer gets, in the unit of ``score`` (each module says how).
    chance: ClassVar[float] = math.nan
    #: The generation budget of the official script that answers this benchmark.
    max_new_tokens: ClassVar[int] = SHORT_MAX_NEW_TOKENS
    #: The file :meth:`write_upload` writes into ``out_dir`` (for a server or a grader), if any.
    upload_file: ClassVar[str] = ""

    def chance_level(self, eval_root: Path) -> float:
        """The chance level of this benchmark's questions under ``eval_root``: the kit's own
        declaration (:data:`CHANCE_FILE`) if it has one, else :attr:`chance` (the official set's)."""
        path = Path(eval_root) / CHANCE_FILE
        if path.is_file():
            declared = read_json(path)
            if self.name in declared:
                return float(declared[self.name])
        return float(self.chance)

    def load_questions(self, eval_root: Path) -> list[EvalQuestion]:
        """The declared question jsonl, whose ``text`` already holds the prompt suffix, with images
        under the declared ``images`` folder (``model_vqa_loader.py``, ``model_vqa.py``)."""
        image_dir = self.path(eval_root, IMAGES) if IMAGES in self.files else self.root(eval_root)
        return [EvalQuestion(r["question_id"], r["text"], image_path(image_dir, r.get("image")),
                             self.max_new_tokens, {}) for r in self.question_rows(eval_root)]

    @abstractmethod
    def score(self, eval_root: Path, answers: list[dict], out_dir: Path | None = None,
              reviews: list[Path] | None = None) -> Score:
        """Score answer rows (writing any upload file into ``out_dir``)."""

    def __repr__(self) -> str:
        return f"<Benchmark {self.name!r} ({self.title})>"

    # -- declared files -----------------------------------------------------------------------

    def root(self, eval_root: Path | str) -> Path:
        """This benchmark's folder inside ``eval_root``."""
        return Path(eval_root) / self.folder

    def path(self, eval_root: Path | str, role: str, **fields: str) -> Path:
        """Where the file declared as ``role`` is (``fields`` fill its ``{placeholders}``)."""
        return self.root(eval_root) / _fill(self.files[role].path, fields)

    def require(self, eval_root: Path | str, role: str, **fields: str) -> Path:
        """:meth:`path`, or :class:`FormatError` "<label> <what> not found" with the declared hint."""
        path = self.path(eval_root, role, **fields)
        if not (path.is_dir() if self.files[role].folder else path.is_file()):
            raise FormatError(path, None, f"{self.describe(role, **fields)} not found", self.hint(role, **fields))
        return path

    def hint(self, role: str, **fields: str) -> str:
        """Where the file declared as ``role`` comes from (for errors about it)."""
        return _fill(self.files[role].hint, fields)

    def describe(self, role: str, **fields: str) -> str:
        """How errors name the file declared as ``role``: ``"GQA question file"``."""
        return f"{self.label or self.title} {_fill(self.files[role].what, fields)}"

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


def _fill(text: str, fields: dict[str, str]) -> str:
    """``text`` with its ``{placeholders}`` filled from ``fields`` (left as is without fields: hints
    quote JSON shapes such as ``{'data': [...]}``)."""
    return text.format(**fields) if fields else text


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
