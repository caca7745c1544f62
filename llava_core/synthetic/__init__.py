"""The synthetic "tiny world": coloured shapes, written in the real LLaVA-1.5 file formats.

Each image is a plain muted background with one large shape (circle, square, triangle or cross)
in one of 8 well-separated colours, with mild colour jitter and pixel noise
(:mod:`~llava_core.synthetic.scenes`). :func:`generate_world` writes a stage-1 set (LCS-558K
layout) and a stage-2 mixture (mix665k layout) (:mod:`~llava_core.synthetic.training`) that
asks, in every benchmark's prompt format, the kinds of questions the eval sets ask
(:mod:`~llava_core.synthetic.tasks`), and
eval sets for all 12 benchmarks of the LLaVA-1.5 table (:mod:`~llava_core.synthetic.benchmarks`,
one writer per benchmark) in the files and layouts that :mod:`llava_core.evaluate.benchmarks`
declares and reads (GQA, POPE and ScienceQA with ``n_eval`` questions; the other nine small), all
deterministic in ``seed``. :func:`package_mirror` (:mod:`~llava_core.synthetic.mirror`) packs
them into reproducible tar archives with a ``sources.json`` manifest. ``eval/chance.json`` holds
each benchmark's chance level on its synthetic questions (the tiny report's chance column).

Every split draws from its own random streams, so eval images are never training images.
"""

from __future__ import annotations

from llava_core.synthetic.benchmarks.pope import CATEGORIES as POPE_CATEGORIES
from llava_core.synthetic.mirror import MIRROR_PARTS, package_mirror
from llava_core.synthetic.scenes import (
           BACKGROUNDS,
           COLORS,
           LETTER_ANSWER,
           SHAPES,
           SHORT_ANSWER,
           Scene,
           render,
           sample_scene,
)
from llava_core.synthetic.world import SYSTEM_PROMPT, generate_world

__all__ = ["BACKGROUNDS", "COLORS", "LETTER_ANSWER", "MIRROR_PARTS", "POPE_CATEGORIES", "SHAPES", "SHORT_ANSWER",
           "SYSTEM_PROMPT", "Scene", "generate_world", "package_mirror", "render", "sample_scene"]
