"""A teacher's reply -> turns, in the authors' ``NNN_conv.txt`` format, or the reason to drop it.

Conversation and complex-reasoning replies are blocks separated by lines of ``===``: a block
``Question:\\n<text>`` followed by a block ``Answer:\\n<text>``, repeated. A detailed description
is the description itself. A reply that does not parse, or that refuses, is malformed.
"""

from __future__ import annotations

import re

#: Openings of replies that refuse or talk about the task instead of doing it.
REFUSALS = ("i'm sorry", "i am sorry", "as an ai", "i cannot", "i can't", "sorry, but")
_SEPARATOR = re.compile(r"^\s*===+\s*$", re.M)


class Malformed(ValueError):
    """A reply that cannot be used; ``reason`` is a short key for the manifest's counts."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _refusal(text: str) -> bool:
    return text.strip().lower().startswith(REFUSALS)


def parse_turns(reply: str) -> list[tuple[str, str]]:
    """``Question:`` / ``Answer:`` blocks -> ``[(question, answer), ...]`` (at least one pair)."""
    if _refusal(reply):
        raise Malformed("refusal", reply.strip()[:80])
    blocks = [b.strip() for b in _SEPARATOR.split(reply) if b.strip()]
    turns, question = [], None
    for i, block in enumerate(blocks):
        head, _, body = block.partition("\n")
        head, body = head.strip().rstrip(":").lower(), body.strip()
        if head == "question" and question is None and body:
            question = body
        elif head == "answer" and question is not None and body:
            turns.append((question, body))
            question = None
        else:
            raise Malformed("format", f"block {i + 1} ({block[:40]!r}) is not the Question:/Answer: block expected")
    if question is not None:
        raise Malformed("format", "the last question has no answer")
    if not turns:
        raise Malformed("empty", "no Question:/Answer: pair")
    return turns


def parse_description(reply: str) -> str:
    """A detailed description: the reply itself, stripped; empty or refusing is malformed."""
    text = reply.strip()
    if not text:
        raise Malformed("empty", "no description")
    if _refusal(text):
        raise Malformed("refusal", text[:80])
    if _SEPARATOR.search(text) or text.lower().startswith("question:"):
        raise Malformed("format", "a description, not Question:/Answer: blocks, was asked for")
    return text


def parse_reply(kind: str, reply: str) -> list[tuple[str, str]] | str:
    """Turns for ``conversation`` and ``complex_reasoning``, the text for ``detail_description``."""
    return parse_description(reply) if kind == "detail_description" else parse_turns(reply)
