"""What each benchmark's eval kit holds: plain declarations, no loading or scoring code.

A benchmark is two things. Its **kit** (this package, one module per benchmark) says where its
files are under ``eval_root`` (laid out as the official ``scripts/v1_5/eval/*.sh`` expect, i.e.
``playground/data/eval``), where each comes from, its answer format, whether an LLM judges it, its
chance level, its generation budget and prompt suffix. Its **code**
(``llava_core/evaluate/benchmarks/<name>.py``) loads the questions, prompts and scores; each
benchmark class there inherits its kit.

The data stages read only kits: the synthetic world writes every benchmark's files where its kit
declares them, and the filter finds the evaluation images through them (``prepare/eval_images.py``).
So editing a benchmark's scorer or loader reruns that benchmark's evaluation and the report, and
nothing upstream; editing a kit reruns what reads it (``llava_core/plan`` follows the imports).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

from llava_core.io import FormatError, read_json

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
#: How a kit's question file is laid out: JSON lines with an ``image`` field (most), a JSON list of
#: conversation records with an ``image`` field (ScienceQA), or a TSV whose ``image`` column holds
#: base64 images (MMBench).
QUESTION_FORMATS = ("jsonl", "json", "tsv")
#: Where most question files come from.
EVAL_ZIP = "the official eval.zip"
#: The roles every question-file benchmark uses: the question file, and the folder its ``image``
#: fields are relative to (the benchmark folder itself when not declared).
QUESTIONS, IMAGES = "questions", "images"
#: An eval kit may declare its own chance levels here, ``{benchmark: score}`` (the synthetic world
#: does: its question sets, option counts and subtasks differ from the official ones).
CHANCE_FILE = "chance.json"

#: name -> "module:Class" of its kit inside this package, in the paper's column order. The
#: benchmark's code is ``llava_core.evaluate.benchmarks.<module>:<Class without "Kit">``.
KITS: dict[str, str] = {
    "vqav2": "vqav2:VQAv2Kit", "gqa": "gqa:GQAKit", "vizwiz": "vizwiz:VizWizKit",
    "scienceqa": "scienceqa:ScienceQAKit", "textvqa": "textvqa:TextVQAKit", "pope": "pope:POPEKit",
    "mme": "mme:MMEKit", "mmbench": "mmbench:MMBenchKit", "mmbench_cn": "mmbench:MMBenchCNKit",
    "seed_bench": "seed_bench:SEEDBenchKit", "llava_bench": "llava_bench:LLaVABenchKit",
    "mm_vet": "mm_vet:MMVetKit",
}


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


class Kit:
    """A benchmark's declarations (class attributes) and the paths they give under an eval root."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: How messages name the benchmark ("MME question file not found"); the title when empty.
    label: ClassVar[str] = ""
    paper_column: ClassVar[str] = ""
    #: The folder under ``eval_root`` holding this benchmark's files.
    folder: ClassVar[str] = ""
    #: The eval-kit files by role; ``questions`` is the question file, ``images`` the image folder.
    files: ClassVar[Mapping[str, KitFile]] = {}
    #: One of :data:`QUESTION_FORMATS`.
    question_format: ClassVar[str] = "jsonl"
    #: One of :data:`ANSWER_FORMATS`.
    answer_format: ClassVar[str] = ""
    #: Scored from an LLM judge's output (``reviews``).
    judged: ClassVar[bool] = False
    #: The score a random or constant answerer gets, in the unit of ``score`` (each kit says how).
    chance: ClassVar[float] = math.nan
    #: The generation budget of the official script that answers this benchmark.
    max_new_tokens: ClassVar[int] = SHORT_MAX_NEW_TOKENS
    #: The instruction appended to each prompt by the answering script (empty: the question file's
    #: texts already end with it).
    suffix: ClassVar[str] = ""
    #: The file the benchmark writes for a server or a grader, if any.
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

    def root(self, eval_root: Path | str) -> Path:
        """This benchmark's folder inside ``eval_root``."""
        return Path(eval_root) / self.folder

    def path(self, eval_root: Path | str, role: str, **fields: str) -> Path:
        """Where the file declared as ``role`` is (``fields`` fill its ``{placeholders}``)."""
        return self.root(eval_root) / _fill(self.files[role].path, fields)

    def image_folder(self, eval_root: Path | str) -> Path:
        """The folder the question file's ``image`` fields are relative to."""
        return self.path(eval_root, IMAGES) if IMAGES in self.files else self.root(eval_root)

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


def _fill(text: str, fields: dict[str, str]) -> str:
    """``text`` with its ``{placeholders}`` filled from ``fields`` (left as is without fields: hints
    quote JSON shapes such as ``{'data': [...]}``)."""
    return text.format(**fields) if fields else text


def _known(name: str) -> str:
    if name not in KITS:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(KITS)}")
    return KITS[name]


@cache
def kit(name: str) -> Kit:
    """The kit of benchmark ``name`` (importing its module only); unknown names raise ``ValueError``."""
    module, _, cls = _known(name).partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


__all__ = ["ANSWER_FORMATS", "CHANCE_FILE", "EVAL_ZIP", "IMAGES", "KITS", "LETTER_SUFFIX", "LONG_MAX_NEW_TOKENS",
           "QUESTIONS", "QUESTION_FORMATS", "SHORT_ANSWER_SUFFIX", "SHORT_MAX_NEW_TOKENS", "Kit", "KitFile", "kit"]
