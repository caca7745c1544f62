"""The training index: a filtered training set as a memory-mapped Arrow dataset.

The filter stage writes each training set twice: ``filtered/<set>.json`` (upstream's LLaVA
format, for people and tools) and ``filtered/<set>.arrow/``, a HF ``datasets`` folder
(``Dataset.save_to_disk``) that training opens with ``datasets.load_from_disk``. The Arrow files
are memory-mapped, so the ranks of a node share one copy of the records through the page cache
instead of each parsing the whole JSON list into private memory (several GB per rank for the
665K-record mixture).

Columns, one row per record, in the order of the JSON file:

* ``record`` (string): the record as compact JSON, exactly as the filtered JSON file holds it
  (``json.dumps(rec, ensure_ascii=False)``), so every record, extra keys included, round-trips;
* ``image`` (string or null): the record's relative image path, null for text-only records;
* ``has_image`` (bool): whether the record has an ``image`` key (upstream's test of modality);
* ``modality_length`` (int32): upstream's ``modality_lengths`` value, the record's word count
  (whitespace-split, over every turn), positive for image records and negative for text-only
  ones, precomputed so the sampler reads one column instead of decoding every record.

A folder is written atomically: into a temporary folder beside it, renamed into place only when
complete, so a killed job never leaves a ``<set>.arrow`` that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llava_core.io import atomic_dir, temp_dir

if TYPE_CHECKING:
    import datasets

INDEX_SUFFIX = ".arrow"
COLUMNS = ("record", "image", "has_image", "modality_length")
WRITE_BATCH = 2048  # rows buffered before a batch goes to the Arrow file


class MissingIndexError(FileNotFoundError):
    """The training index of a filtered set is not there (a folder made by an older version)."""


def index_path(records_json: str | os.PathLike) -> Path:
    """The index folder that belongs beside a filtered JSON file: ``x/pretrain.json`` -> ``x/pretrain.arrow``."""
    p = Path(records_json)
    return p.with_name(p.stem + INDEX_SUFFIX)


def modality_length(rec: Mapping[str, Any]) -> int:
    """Upstream's ``modality_lengths`` value of one record: its word count over every turn,
    positive if the record has an image, negative if it is text-only."""
    n = sum(len(turn["value"].split()) for turn in rec["conversations"])
    return n if "image" in rec else -n


def _features() -> datasets.Features:
    from datasets import Features, Value

    return Features({"record": Value("string"), "image": Value("string"), "has_image": Value("bool"),
                     "modality_length": Value("int32")})


def _row(rec: Mapping[str, Any], text: str | None) -> tuple[str, str | None, bool, int]:
    has_image = "image" in rec
    return (json.dumps(rec, ensure_ascii=False) if text is None else text,
            rec["image"] if has_image else None, has_image, modality_length(rec))


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """``datasets``' progress bars off inside the block unless ``progress`` (the switch is global)."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        yield
    finally:
        if not progress and not was_disabled:
            enable_progress_bars()


class TrainingIndexWriter:
    """Stream records into a new training index at ``path``; a context manager.

    Records are added one at a time (:meth:`add`) in bounded memory: rows go to an Arrow file in
    a temporary folder beside ``path`` in batches, and on a clean exit the file is saved as a
    ``datasets`` folder (``save_to_disk``) in a second temporary folder, which then replaces
    ``path``. On an exception nothing is left at ``path`` (an older index there is kept) and
    both temporary folders are removed::

        with TrainingIndexWriter(out / "finetune.arrow") as index:
            for rec in records:
                index.add(rec)
    """

    def __init__(self, path: str | os.PathLike, *, progress: bool = False):
        self.path, self.progress = Path(path), progress
        self.count = 0
        self._buffer: list[tuple[str, str | None, bool, int]] = []
        self._build: Path | None = None
        self._writer = None

    def __enter__(self) -> TrainingIndexWriter:
        from datasets.arrow_writer import ArrowWriter

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._build = temp_dir(self.path.parent, prefix=f".{self.path.name}.build.")
        self._writer = ArrowWriter(features=_features(), path=str(self._build / "records.arrow"),
                                   writer_batch_size=WRITE_BATCH)
        return self

    def add(self, rec: Mapping[str, Any], text: str | None = None) -> None:
        """Append one record. ``text``: its JSON text when the caller already has it (the filter
        writes the same string into the JSON file); ``json.dumps(rec, ensure_ascii=False)`` otherwise."""
        self._buffer.append(_row(rec, text))
        self.count += 1
        if len(self._buffer) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            cols = list(zip(*self._buffer, strict=True))
            self._writer.write_batch(dict(zip(COLUMNS, map(list, cols), strict=True)))
            self._buffer.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self._writer is not None:
                self._writer.close()  # a no-op once finalized; never raises
            shutil.rmtree(self._build, ignore_errors=True)

    def _finish(self) -> None:
        from datasets import Dataset

        self._flush()
        self._writer.finalize()
        with _quiet(self.progress), atomic_dir(self.path) as tmp:
            built = Dataset.from_file(str(self._build / "records.arrow"))
            if len(built) != self.count:
                raise RuntimeError(f"{self.path}: wrote {len(built)} rows for {self.count} records")
            built.save_to_disk(str(tmp))
            del built


def write_training_index(records: Iterable[Mapping[str, Any]], path: str | os.PathLike, *,
                         progress: bool = False) -> int:
    """Write ``records`` (any iterable: streamed, never held whole) as a training index folder at
    ``path``, atomically; return the number of records."""
    with TrainingIndexWriter(path, progress=progress) as writer:
        for rec in records:
            writer.add(rec)
    return writer.count


class TrainingIndex(Sequence):
    """A training set, record by record: ``index[i]`` is record ``i`` as a dict (decoded on
    access), ``len(index)`` the number of records, :meth:`modality_lengths` the sampler's lengths.

    Wraps a ``datasets.Dataset`` with the columns of this module; the one from
    :func:`open_training_index` is memory-mapped and pickles by file path (DataLoader workers
    reopen the same files).
    """

    def __init__(self, dataset: datasets.Dataset, source: str | os.PathLike | None = None):
        missing = [c for c in COLUMNS if c not in dataset.column_names]
        if missing:
            raise ValueError(f"{source or 'dataset'}: not a training index (no column(s) {missing})")
        self.dataset, self.source = dataset, None if source is None else Path(source)
        self._records = dataset.select_columns(["record"])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):  # int -> dict; slice -> list of dicts
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"record {i} out of range for a training index of {n} records")
        return json.loads(self._records[j]["record"])

    def __iter__(self) -> Iterator[dict]:
        for batch in self._records.iter(batch_size=1024):
            yield from map(json.loads, batch["record"])

    def modality_lengths(self) -> list[int]:
        """Signed word counts of every record (see :func:`modality_length`), read from the
        precomputed column without decoding any record."""
        return self.dataset.data.column("modality_length").to_pylist()

    def images(self) -> list[str | None]:
        """Every record's image path (None for text-only records)."""
        return self.dataset.data.column("image").to_pylist()

    def __repr__(self) -> str:
        return f"TrainingIndex({len(self)} records{f', {self.source}' if self.source else ''})"


def training_index_from_records(records: Iterable[Mapping[str, Any]]) -> TrainingIndex:
    """An in-memory training index of ``records`` (tests, scripts and explicit JSON record files:
    the filter stage's index on disk is what training normally opens)."""
    from datasets import Dataset

    rows = [_row(rec, None) for rec in records]
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in COLUMNS]
    return TrainingIndex(Dataset.from_dict(dict(zip(COLUMNS, map(list, cols), strict=True)), features=_features()))


def open_training_index(path: str | os.PathLike) -> TrainingIndex:
    """Open a training set for training.

    ``path`` is an index folder (``filtered/<set>.arrow``, memory-mapped: nothing is read into
    private memory but the lengths the sampler asks for), or a LLaVA JSON records file, read and
    validated into an in-memory index. A missing index folder raises :class:`MissingIndexError`
    saying to rerun the filter stage, which writes it.
    """
    from datasets import load_from_disk

    path = Path(path)
    if path.is_file():
        if path.suffix == ".json":
            from llava_core.data.formats import read_llava_records

            return training_index_from_records(read_llava_records(path))
        raise ValueError(f"{path}: expected a training index folder ({INDEX_SUFFIX}) or a JSON records file")
    if not (path / "state.json").is_file() or not (path / "dataset_info.json").is_file():
        sibling = path.with_suffix(".json") if path.suffix == INDEX_SUFFIX else None
        older = (f" {path.parent} holds {sibling.name} only: it was filtered by an older version of llava-core, "
                 "which wrote no index." if sibling is not None and sibling.is_file() else "")
        raise MissingIndexError(
            f"no training index at {path}.{older} The filter stage writes it: rerun that stage "
            "(snakemake --forcerun filter ..., or llava-core filter <experiment> --data-dir <data>)")
    with _quiet(False):
        ds = load_from_disk(str(path), keep_in_memory=False)
    return TrainingIndex(ds, source=path)


__all__ = ["COLUMNS", "INDEX_SUFFIX", "MissingIndexError", "TrainingIndex", "TrainingIndexWriter", "index_path",
           "modality_length", "open_training_index", "training_index_from_records", "write_training_index"]
