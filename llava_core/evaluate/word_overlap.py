"""The rule judge's measure: the share of a reference's words that an answer contains.

Its own module because the tiny world computes LLaVA-Bench's chance level with it
(``synthetic/benchmarks/llava_bench.py``): the world depends on this measure, not on the judge.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def word_overlap(reference: str, answer: str) -> float:
    """Share of the reference's distinct words (lowercase alphanumerics) that the answer contains."""
    ref = _words(reference)
    return len(ref & _words(answer)) / len(ref) if ref else 0.0
