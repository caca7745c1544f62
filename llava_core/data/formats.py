"""The LLaVA file formats, read and written in one place.

* LLaVA training records (LCS-558K, mix665k): a JSON list of
  ``{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value": str}, ...]}``.
* Eval-kit question files: JSON lines with at least ``question_id`` and ``text``.
* Answer files: JSON lines ``{"question_id", "prompt", "text", "answer_id", "model_id",
  "metadata"}``, the format of the official ``model_vqa*.py`` scripts.
* Question TSVs with base64 images (MMBench): an ``index`` column and an ``image`` column whose
  cells are base64 images, or the index of the row whose image they share; the images are decoded
  once into a folder, one ``<index>.<ext>`` file each.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from llava_core.io import FormatError, atomic_write, read_json, read_jsonl, write_json, write_jsonl

IMAGE_TOKEN = "<image>"
ROLES = ("human", "gpt")
#: A record may open with ``{"from": "system", ...}``: the chat template's system message.
SYSTEM = "system"


def validate_record(rec: Any, path: str | os.PathLike, index: int) -> dict:
    """Check one LLaVA record; raise :class:`FormatError` naming the record number otherwise."""
    where = f"record {index}"
    if not isinstance(rec, dict):
        raise FormatError(path, None, f"{where}: expected an object, got {type(rec).__name__}")
    conv = rec.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise FormatError(path, None, f"{where} (id={rec.get('id')!r}): 'conversations' must be a non-empty list")
    # An optional leading system turn, then human/gpt alternating.
    system = 1 if isinstance(conv[0], dict) and conv[0].get("from") == SYSTEM else 0
    if len(conv) == system:
        raise FormatError(path, None, f"{where} (id={rec.get('id')!r}): only a system turn, no human turn")
    for turn_no, turn in enumerate(conv):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise FormatError(path, None, f"{where} (id={rec.get('id')!r}) turn {turn_no}: expected "
                              "{'from': ..., 'value': str}")
        expected = SYSTEM if turn_no < system else ROLES[(turn_no - system) % 2]
        if turn.get("from") != expected:
            raise FormatError(path, None, f"{where} (id={rec.get('id')!r}) turn {turn_no}: 'from' is "
                              f"{turn.get('from')!r}, expected {expected!r}",
                              "turns must alternate human/gpt, starting with human; a system turn may "
                              "come first")
    if "image" in rec and not isinstance(rec["image"], str):
        raise FormatError(path, None, f"{where} (id={rec.get('id')!r}): 'image' must be a string path")
    return rec


def read_llava_records(path: str | os.PathLike) -> list[dict]:
    """Read and validate a LLaVA-format JSON list of conversation records."""
    data = read_json(path)
    if not isinstance(data, list):
        raise FormatError(path, None, f"expected a JSON list of records, got {type(data).__name__}")
    return [validate_record(rec, path, i) for i, rec in enumerate(data)]


def iter_llava_records(path: str | os.PathLike) -> Iterator[tuple[int, dict | FormatError]]:
    """Stream a LLaVA records file record by record, in memory independent of its size.

    Yields ``(index, record)``, or ``(index, FormatError)`` for a record that fails validation so
    the caller can drop and report it. A file that is not a JSON list, or whose JSON breaks off
    (a truncated download), raises :class:`FormatError`.
    """
    import ijson  # C-backed incremental parser: the 1 GB mix665k never sits in memory at once

    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
        if not head.startswith(b"["):
            raise FormatError(path, None, "expected a JSON list of records"
                              + (" (the file is empty)" if not head else ""),
                              "re-download the file; LLaVA record files are one JSON list")
        fh.seek(0)
        index = 0
        try:
            for rec in ijson.items(fh, "item", use_float=True):
                try:
                    yield index, validate_record(rec, path, index)
                except FormatError as e:
                    yield index, e
                index += 1
        except ijson.JSONError as e:
            raise FormatError(path, None, f"invalid JSON in record {index}: {' '.join(str(e).split())}",
                              "the file is truncated or corrupt; download it again") from None


def write_llava_records(path: str | os.PathLike, records: list[dict]) -> None:
    """Write LLaVA records (atomically, compact like the released files)."""
    write_json(path, records, indent=None)


def read_questions(path: str | os.PathLike, required: Iterable[str] = ("question_id", "text")) -> list[dict]:
    """Read an eval-kit question jsonl, checking each line has the ``required`` fields."""
    rows = read_jsonl(path)
    required = tuple(required)
    with open(path, encoding="utf-8") as fh:
        linenos = [n for n, line in enumerate(fh, 1) if line.strip()]
    for lineno, row in zip(linenos, rows, strict=True):
        missing = [k for k in required if k not in row]
        if missing:
            raise FormatError(path, lineno, f"missing field(s) {missing}", f"each line needs {list(required)}")
    return rows


def make_answer(question_id: Any, prompt: str, text: str, model_id: str, **extra: Any) -> dict:
    """One answer-file row in the official format (``answer_id`` is a random id, as upstream)."""
    row = {"question_id": question_id, "prompt": prompt, "text": text,
           "answer_id": uuid.uuid4().hex[:22], "model_id": model_id, "metadata": {}}
    row.update(extra)
    return row


def read_answers(path: str | os.PathLike) -> list[dict]:
    """Read an answer jsonl; every line needs ``question_id`` and ``text``."""
    return read_questions(path, required=("question_id", "text"))


def write_answers(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write an answer jsonl atomically."""
    write_jsonl(path, rows)


def check_coverage(questions: list[dict], answers: list[dict], answers_path: str | Path) -> dict:
    """Map question_id -> answer row; raise if any question has no answer."""
    by_id = {str(a["question_id"]): a for a in answers}
    missing = [q["question_id"] for q in questions if str(q["question_id"]) not in by_id]
    if missing:
        raise FormatError(answers_path, None, f"{len(missing)} of {len(questions)} questions have no answer "
                          f"(first: {missing[:3]})", "rerun generation or pass the complete answers file")
    return by_id


def is_none(value: Any) -> bool:
    """``model_vqa_mmbench.is_none``: None, NaN, or the strings 'nan'/'none' (any case)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.lower() in ("nan", "none")


def read_tsv_rows(path: str | os.PathLike, required: Iterable[str] = ("index",)) -> list[dict]:
    """The rows of a question TSV (pandas, all cells as strings or NaN; ``index`` as int), checked
    to hold the ``required`` columns."""
    import pandas as pd

    try:
        df = pd.read_table(path, dtype=str)
    except Exception as e:  # pandas parser errors carry their own line numbers
        raise FormatError(path, None, f"cannot read the TSV: {e}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise FormatError(path, 1, f"missing column(s) {missing}")
    rows = df.to_dict("records")
    for lineno, row in enumerate(rows, 2):
        try:
            row["index"] = int(row["index"])
        except (TypeError, ValueError):
            raise FormatError(path, lineno, f"index {row['index']!r} is not an integer") from None
    return rows


def _image_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".jpg"


def tsv_image_files(rows: list[dict], folder: Path, tsv: str | os.PathLike) -> dict[int, str | None]:
    """index -> the absolute path of each row's image, decoded from base64 into ``folder`` once
    (an existing ``<index>.*`` file is reused); None for a row without an image."""
    by_index = {r["index"]: r for r in rows}

    def image_of(row: dict) -> str | None:
        b64 = row.get("image")
        if is_none(b64):
            return None
        if len(b64) < 16 and b64.strip().isdigit() and int(b64) != row["index"]:
            # some MMBench TSVs store a circular copy's image as the index of the original row
            if int(b64) not in by_index:
                raise FormatError(tsv, None, f"index {row['index']}: image refers to missing row {b64}")
            return image_of(by_index[int(b64)])
        existing = list(folder.glob(f"{row['index']}.*"))
        if existing:
            return str(existing[0].absolute())
        try:
            data = base64.b64decode(b64, validate=False)
        except (binascii.Error, ValueError):
            raise FormatError(tsv, None, f"index {row['index']}: image is not valid base64") from None
        target = folder / f"{row['index']}{_image_suffix(data)}"
        with atomic_write(target, "wb") as fh:
            fh.write(data)
        return str(target.absolute())

    return {row["index"]: image_of(row) for row in rows}
