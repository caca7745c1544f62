"""Count the training records that ``model_max_length`` would cut, under both truncation rules.

The released LLaVA-1.5 checkpoints were trained by code that cut the *text* tokens to
``model_max_length`` (the image counted as one token); upstream later also cut the sequence
after the image is expanded (576 positions for CLIP-L/14-336). The filter stage counts, on the
filtered set and with the model's own tokenizer and template, the records each rule would cut,
so the choice of ``truncation`` is made knowing how many samples it touches. Records are
streamed and tokenised in a process pool; nothing is dropped here.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

from llava_core.data.formats import iter_llava_records

MAX_EXAMPLES = 20
_CHUNK = 256
_state: dict[str, Any] = {}


def _init(tokenizer_path: str, template: str) -> None:
    from llava_core.data.inspect import load_tokenizer

    _state.update(tokenizer=load_tokenizer(tokenizer_path), template=template)


def _text_lengths(chunk: list[tuple[int, dict]]) -> list[tuple[int, str, bool, int | str]]:
    """(index, id, has_image, text tokens with the image as one, or the error) of each record."""
    from llava_core.data.conversation import render
    from llava_core.data.tokenize import encode

    out = []
    for i, rec in chunk:
        has_image = "image" in rec
        try:
            rendered = render(_state["template"], rec["conversations"], has_image=has_image,
                              tokenizer=_state["tokenizer"])
            n: int | str = encode(rendered, _state["tokenizer"], max_length=10**9, num_image_tokens=1,
                                  has_image=has_image).num_text_tokens
        except ValueError as e:
            n = str(e)
        out.append((i, str(rec.get("id", f"#{i}")), has_image, n))
    return out


def _chunks(path: Path) -> Iterator[list[tuple[int, dict]]]:
    records = ((i, rec) for i, rec in iter_llava_records(path) if isinstance(rec, dict))
    while chunk := list(islice(records, _CHUNK)):
        yield chunk


def count_truncation(records_path: Path, *, tokenizer_path: str, template: str, max_length: int,
                     num_image_tokens: int, workers: int = 1, progress: bool = True) -> dict:
    """Per rule, how many records of ``records_path`` are longer than ``max_length``.

    ``text``: text tokens (the image counted once) > ``max_length``; ``expanded``: the same
    length plus ``num_image_tokens - 1`` for image records > ``max_length``. Records the template
    cannot render or encode (training would fail on them) are counted as ``unencodable``.
    """
    from llava_core.data.tokenize import expanded_length

    counts = {"text": 0, "expanded": 0}
    examples: dict[str, list[str]] = {"text": [], "expanded": [], "unencodable": []}
    n_records, longest, unencodable = 0, 0, 0
    results: Iterator[list] = iter(())
    if workers > 1:
        pool = multiprocessing.Pool(workers, initializer=_init, initargs=(tokenizer_path, template))
        results = pool.imap(_text_lengths, _chunks(records_path))
    else:
        pool = None
        _init(tokenizer_path, template)
        results = map(_text_lengths, _chunks(records_path))
    try:
        with tqdm(desc=f"counting tokens in {records_path.name}", unit="rec", disable=not progress) as bar:
            for rows in results:
                for i, rid, has_image, n in rows:
                    n_records += 1
                    if isinstance(n, str):
                        unencodable += 1
                        if len(examples["unencodable"]) < MAX_EXAMPLES:
                            examples["unencodable"].append(f"{rid} (record {i}): {n}")
                        continue
                    longest = max(longest, n)
                    for rule, length in (("text", n), ("expanded", expanded_length(n, has_image, num_image_tokens))):
                        if length > max_length:
                            counts[rule] += 1
                            if len(examples[rule]) < MAX_EXAMPLES:
                                examples[rule].append(rid)
                bar.update(len(rows))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return {"template": template, "max_length": max_length, "num_image_tokens": num_image_tokens,
            "records": n_records, "cut_by_text_rule": counts["text"], "cut_by_expanded_rule": counts["expanded"],
            "unencodable": unencodable, "longest_text_tokens": longest, "examples": examples}
