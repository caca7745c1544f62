"""Greedy generation (batch 1, or batched with left padding), producing official answer-file rows.

Questions are sorted by answer budget and prompt length so batches carry little padding;
results come back in the question order. Greedy decoding (``do_sample=False``, one beam) as the
paper evaluates. Each row is cut to its own ``max_new_tokens`` and at its first end-of-sequence
token, so in fp32 batch 8 gives the texts batch 1 gives (``tests/test_eval_generate.py``); in
fp16/bf16 a padded batch rounds differently and some greedy answers change
(``scripts/bench_eval_precision.py``, docs/evaluation.md), hence the official batch 1 default.

:func:`answer_questions` adds resuming: finished batches are appended to
``<answers>.partial.jsonl`` (a header line records the model and a digest of the generation
settings), a rerun for the same model and settings answers only what is missing, and the final
answer file is written atomically. :func:`shard_range` cuts a question list into the official
``--num-chunks``/``--chunk-idx`` pieces.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from llava_core.data.conversation import Rendered, render_prompt
from llava_core.data.formats import make_answer, write_answers
from llava_core.data.images import process_image
from llava_core.data.tokenize import encode
from llava_core.evaluate.benchmarks.base import EvalQuestion

log = logging.getLogger(__name__)

#: Bump when a change to this module changes the answers, so old partial files are not reused.
#: 2: evaluation.dtype (fp16 default) and the GPU instead of model.torch_dtype on the CPU.
GENERATION_VERSION = 2
PARTIAL_FORMAT = "llava-core/partial-answers/1"


def _encode_prompt(prompt: str, parts, template: str) -> list[int]:
    # No supervised spans: only the ids (with the image token expanded) are needed.
    return encode(Rendered(prompt, [], chat_template=template == "chat"), parts.tokenizer, max_length=10**9,
                  num_image_tokens=parts.num_image_tokens).input_ids


def stop_ids(template: str, tokenizer) -> int | list[int]:
    """What generation stops at: the chat template's end-of-turn token (and EOS), else EOS."""
    if template == "chat":
        from llava_core.data.chat_template import stop_token_ids

        return stop_token_ids(tokenizer)
    return tokenizer.eos_token_id


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"fp16"`` (the names of ``evaluation.dtype``)."""
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}.get(dtype, str(dtype))


def _cut(ids: list[int], limit: int, eos: int | list[int] | None) -> list[int]:
    """The first ``limit`` generated ids, stopped after the first end-of-sequence id."""
    ids = ids[:limit]
    stops = set(eos if isinstance(eos, list | tuple) else [eos]) - {None}
    for pos, t in enumerate(ids):
        if t in stops:
            return ids[:pos + 1]
    return ids


@torch.inference_mode()
def generate_answers(parts, questions: list[EvalQuestion], *, template: str, aspect: str, batch_size: int,
                     max_new_tokens: int | None, model_id: str, progress: bool = True,
                     on_batch: Callable[[list[dict]], None] | None = None,
                     on_batch_indexed: Callable[[list[tuple[int, dict]]], None] | None = None) -> list[dict]:
    """Answer ``questions`` greedily; ``max_new_tokens`` None uses each question's default.

    ``on_batch`` gets each finished batch's answer rows; ``on_batch_indexed`` gets
    ``(question index, row)`` pairs (what resuming needs). Either may raise to stop early.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, tok = parts.model, parts.tokenizer
    model.eval()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    prompts = [render_prompt(template, q.text, has_image=q.image is not None, tokenizer=tok) for q in questions]
    encoded = [_encode_prompt(p, parts, template) for p in prompts]
    limits = [max_new_tokens or q.default_max_new_tokens for q in questions]
    # Same answer budget together (a 16-token question never waits for a 1024-token one), then
    # by length so a batch carries little padding.
    order = sorted(range(len(questions)), key=lambda i: (limits[i], len(encoded[i]), i))
    eos = stop_ids(template, tok)
    answers: dict[int, dict] = {}
    bar = tqdm(total=len(questions), desc="generate", unit="q", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            seq = encoded[i]
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        # Images in row order: the model fills the image tokens of row r with the r-th image.
        pixels = []
        for i in idx:
            if questions[i].image is not None:
                with Image.open(questions[i].image) as img:
                    pixels.append(process_image(img.convert("RGB"), parts.image_processor, aspect))
        limit = max(limits[i] for i in idx)
        # transformers 5 runs the vision encoder whenever the key is present, even for None.
        extra = {"pixel_values": torch.stack(pixels).to(device, dtype)} if pixels else {}
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **extra,
                             max_new_tokens=limit, do_sample=False, num_beams=1,
                             pad_token_id=tok.pad_token_id, eos_token_id=eos)
        new = out[:, width:].tolist()
        texts = tok.batch_decode([_cut(new[row], limits[i], eos) for row, i in enumerate(idx)],
                                 skip_special_tokens=True)
        done = []
        for row, i in enumerate(idx):
            q = questions[i]
            answers[i] = make_answer(q.question_id, q.text, texts[row].strip(), model_id, **q.extra)
            done.append((i, answers[i]))
        if on_batch_indexed:
            on_batch_indexed(done)
        if on_batch:
            on_batch([r for _, r in done])
        bar.update(len(idx))
    bar.close()
    return [answers[i] for i in range(len(questions))]


# ----------------------------------------------------------------------------- shards
def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``, 0 <= K < N (K is 0-based, like the official ``--chunk-idx``)."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard {spec!r}: expected K/N, e.g. 0/4 (K counts from 0)") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec!r}: need N >= 1 and 0 <= K < N")
    return k, n


def shard_range(total: int, shard: int, num_shards: int) -> range:
    """The official split: contiguous chunks of ``ceil(total / num_shards)`` questions.

    As upstream, the last chunks may be short or (when ``num_shards`` does not divide well)
    empty; concatenating the chunks in order gives back every question once, in order.
    """
    size = math.ceil(total / num_shards) if total else 0
    start = min(total, shard * size)
    return range(start, min(total, start + size))


def shard_file(out_dir: Path, shard: int, num_shards: int) -> Path:
    """Where the ``shard``-th of ``num_shards`` generation jobs writes its answers (the plan's layout)."""
    from llava_core.plan.layout import shard_answers

    return Path(shard_answers(str(out_dir), shard, num_shards))


# ----------------------------------------------------------------------------- resuming
def model_fingerprint(model_dir: str | Path) -> str:
    """A cheap digest of a model folder: file names, sizes and modification times.

    A retrained model rewrites its files, so its fingerprint changes even at the same path.
    """
    p = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else ([p] if p.exists() else [])
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(p) if p.is_dir() else f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def partial_path(answers_path: Path) -> Path:
    """``answers.jsonl`` -> ``answers.partial.jsonl`` (beside it)."""
    answers_path = Path(answers_path)
    return answers_path.with_name(answers_path.name.removesuffix(".jsonl") + ".partial.jsonl")


def _question_key(q: EvalQuestion, limit: int) -> str:
    return json.dumps([str(q.question_id), q.text, q.image and os.path.basename(q.image), limit,
                       sorted(q.extra.items()) if q.extra else []], default=str, ensure_ascii=False)


def _read_partial(path: Path, header: dict) -> dict[str, dict]:
    """The reusable rows of a partial file (key -> answer row); {} if it belongs to other settings."""
    if not path.exists():
        return {}
    rows: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        try:
            found = json.loads(first)
        except json.JSONDecodeError:
            found = None
        if not isinstance(found, dict) or found.get("header") != header:
            log.info("%s: written for another model or other settings; starting afresh", path)
            return {}
        for line in fh:
            try:
                entry = json.loads(line)
                rows[entry["key"]] = entry["answer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
    return rows


def answer_questions(parts, questions: list[EvalQuestion], answers_path: str | Path, *, model_path: str | Path,
                     template: str, aspect: str, batch_size: int, max_new_tokens: int | None, model_id: str,
                     dtype: str = "", quantization: str = "none", progress: bool = True,
                     on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """:func:`generate_answers` with resuming; writes ``answers_path`` atomically and returns its rows.

    ``dtype`` (``evaluation.dtype``), if given, must be the loaded model's. The settings digest
    records the model's dtype, device type and the batch size: outside fp32 each can change a
    greedy answer, so a partial file made with other ones is not mixed in. The partial file is
    kept after success: a rerun whose scoring failed reuses every answer. ``quantization``
    (``evaluation.quantization``) must be how the model was loaded, and is part of the settings.
    """
    from llava_core.model.quantize import quantization_of
    answers_path = Path(answers_path)
    param = next(parts.model.parameters())
    used_dtype = dtype_name(param.dtype)
    if dtype and dtype != used_dtype:
        raise ValueError(f"answers asked for in {dtype}, but the model is loaded in {used_dtype}")
    if quantization_of(parts.model) != quantization:
        raise ValueError(f"answers asked for with quantization {quantization}, but the model is loaded with "
                         f"{quantization_of(parts.model)}")
    limits = [max_new_tokens or q.default_max_new_tokens for q in questions]
    settings = {"template": template, "aspect": aspect, "max_new_tokens": max_new_tokens, "model_id": model_id,
                "dtype": used_dtype, "device": param.device.type, "batch_size": batch_size,
                "generation_version": GENERATION_VERSION}
    if quantization != "none":  # absent when off, so earlier partial files stay reusable
        settings["quantization"] = quantization
    header = {"format": PARTIAL_FORMAT, "model": str(model_path), "model_fingerprint": model_fingerprint(model_path),
              "settings_digest": settings_digest(settings), "settings": settings}
    ppath = partial_path(answers_path)
    keys = [_question_key(q, lim) for q, lim in zip(questions, limits, strict=True)]
    done = _read_partial(ppath, header)
    if not done:
        ppath.parent.mkdir(parents=True, exist_ok=True)
        with open(ppath, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"header": header}) + "\n")
    else:
        with open(ppath, "rb+") as fh:  # end a line cut short by a kill before appending
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
    todo = [i for i, k in enumerate(keys) if k not in done]
    if len(todo) < len(questions):
        log.info("%s: reusing %d of %d answers from %s", answers_path.name, len(questions) - len(todo),
                 len(questions), ppath)

    def append(batch: list[tuple[int, dict]]) -> None:
        with open(ppath, "a", encoding="utf-8") as fh:
            for j, row in batch:
                fh.write(json.dumps({"key": keys[todo[j]], "answer": row}, ensure_ascii=False) + "\n")
                done[keys[todo[j]]] = row
            fh.flush()
            os.fsync(fh.fileno())

    if todo:
        generate_answers(parts, [questions[i] for i in todo], template=template, aspect=aspect,
                         batch_size=batch_size, max_new_tokens=max_new_tokens, model_id=model_id,
                         progress=progress, on_batch=on_batch, on_batch_indexed=append)
    rows, used = [], set()
    for k in keys:
        row = dict(done[k])
        if k in used:  # the same question twice: same answer, its own answer id
            row["answer_id"] = uuid.uuid4().hex[:22]
        used.add(k)
        rows.append(row)
    write_answers(answers_path, rows)
    return rows
