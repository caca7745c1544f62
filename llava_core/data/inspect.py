"""See exactly what training sees: each record's rendered prompt, token ids, labels, and the text
of every supervised run, so masking problems (upstream's "tokenization mismatch") show up by eye.

``input_ids`` is the sequence the model gets, the image as its run of ``num_image_tokens`` ids;
``tokens`` spells the same stream as pieces (``▁US``, ``ER``, ``<0x0A>`` ...) with that run shown
as one entry, ``"<image>x576"``, so upstream's token stream can be read off directly.

``llava-core inspect`` prints one JSON line per record from :func:`inspect_records`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llava_core.data.conversation import get_template, render
from llava_core.data.formats import read_llava_records
from llava_core.data.tokenize import IGNORE_INDEX, encode, make_tokenizer_for_llava
from llava_core.io import FormatError, read_json

DEFAULT_IMAGE_TOKENS = 576  # CLIP ViT-L/14 at 336 px, CLS dropped


def load_tokenizer(tokenizer_dir: str | Path) -> Any:
    """A fast tokenizer from a transformers folder, with ``<image>`` (and a pad token) added if missing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), use_fast=True)
    return make_tokenizer_for_llava(tokenizer)


def default_image_tokens(tokenizer_dir: str | Path) -> int:
    """``image_seq_length`` when the folder is a LLaVA checkpoint, else 576."""
    cfg = Path(tokenizer_dir) / "config.json"
    if cfg.exists():
        value = read_json(cfg).get("image_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_IMAGE_TOKENS


def supervised_runs(input_ids: list[int], labels: list[int]) -> list[list[int]]:
    """The token ids of each maximal run of consecutive supervised positions."""
    runs: list[list[int]] = []
    previous = False
    for tid, label in zip(input_ids, labels, strict=True):
        on = label != IGNORE_INDEX
        if on:
            if not previous:
                runs.append([])
            runs[-1].append(tid)
        previous = on
    return runs


def token_pieces(tokenizer: Any, input_ids: list[int]) -> list[str]:
    """The pieces of ``input_ids``, each run of the image token collapsed to ``"<image>xN"``."""
    from llava_core.data.formats import IMAGE_TOKEN

    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    pieces: list[str] = []
    run = 0
    for tid, piece in zip(input_ids, tokenizer.convert_ids_to_tokens(input_ids), strict=True):
        if tid == image_id:
            run += 1
            continue
        if run:
            pieces.append(f"{IMAGE_TOKEN}x{run}")
            run = 0
        pieces.append(piece)
    if run:
        pieces.append(f"{IMAGE_TOKEN}x{run}")
    return pieces


def inspect_records(records_path: str | Path, template: str, tokenizer_dir: str | Path, max_length: int = 2048,
                    num_image_tokens: int | None = None, truncation: str = "text") -> Iterator[dict]:
    """Yield ``{"id", "prompt", "tokens", "input_ids", "labels", "supervised", "truncated"}`` per record.

    ``supervised`` holds the decoded text (special tokens kept) of each contiguous run of
    supervised tokens; for ``vicuna_v1`` that is each answer with its leading space and ``</s>``.
    """
    if template != "chat":
        get_template(template)  # fail before reading anything
    records = read_llava_records(records_path)
    tokenizer = load_tokenizer(tokenizer_dir)
    n_image = num_image_tokens if num_image_tokens is not None else default_image_tokens(tokenizer_dir)
    for i, rec in enumerate(records):
        try:
            has_image = "image" in rec
            rendered = render(template, rec["conversations"], has_image=has_image, tokenizer=tokenizer)
            enc = encode(rendered, tokenizer, max_length=max_length, num_image_tokens=n_image, has_image=has_image,
                         truncation=truncation)
        except ValueError as e:
            raise FormatError(records_path, None, f"record {i} (id={rec.get('id')!r}): {e}") from None
        yield {
            "id": rec.get("id"),
            "prompt": rendered.text,
            "tokens": token_pieces(tokenizer, enc.input_ids),
            "input_ids": enc.input_ids,
            "labels": enc.labels,
            "supervised": [tokenizer.decode(run, skip_special_tokens=False)
                           for run in supervised_runs(enc.input_ids, enc.labels)],
            "truncated": enc.truncated,
            "num_text_tokens": enc.num_text_tokens,
        }
