"""Parsed teacher output -> records in the layout of ``llava_instruct_150k.json``:
``{"id": "000000033471", "image": "000000033471.jpg", "conversations": [{"from": "human", ...},
{"from": "gpt", ...}, ...]}``, with ``<image>`` on its own line before or after the first question,
as the released file has it both ways."""

from __future__ import annotations

import hashlib
import random

from llava_core.data.formats import IMAGE_TOKEN


def _placement(seed: int, image_id: int, kind: str) -> random.Random:
    """A random stream per (seed, image, kind): a record does not change when others are added."""
    digest = hashlib.sha256(f"{seed}:{image_id}:{kind}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def make_record(image_id: int, kind: str, parsed: list[tuple[str, str]] | str, *, seed: int,
                detail_prompts: tuple[str, ...] = ()) -> dict:
    """One record for image ``image_id``: ``parsed`` is a list of (question, answer) turns, or a
    description (``detail_description``, asked with one of ``detail_prompts``)."""
    rng = _placement(seed, image_id, kind)
    if isinstance(parsed, str):
        if not detail_prompts:
            raise ValueError("a detailed description needs detail_prompts: the instructions it answers")
        turns = [(rng.choice(detail_prompts), parsed)]
    else:
        turns = list(parsed)
    first_q, first_a = turns[0]
    first_q = f"{IMAGE_TOKEN}\n{first_q}" if rng.random() < 0.5 else f"{first_q}\n{IMAGE_TOKEN}"
    conversations = []
    for q, a in [(first_q, first_a), *turns[1:]]:
        conversations += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return {"id": f"{image_id:012d}", "image": f"{image_id:012d}.jpg", "conversations": conversations}
