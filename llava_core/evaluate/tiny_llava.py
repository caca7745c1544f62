"""A tiny random LLaVA and a mixed question set, made in code, for generation tests and timing.

Random weights are enough to check that batching, resuming and sharding do not change an
answer; nothing here is trained.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace as NS

import torch
from PIL import Image

from llava_core.evaluate.benchmarks.base import EvalQuestion

SYNTHETIC = NS(image_size=32,
               llm=NS(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=300),
               vision=NS(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         patch_size=8))
MODEL = NS(llm="{data}/tiny-llm", vision_tower="{data}/tiny-clip", projector_type="mlp2x_gelu",
           vision_feature_layer=-2, vision_feature_select_strategy="default", image_size=32, patch_size=8,
           model_max_length=512, torch_dtype="fp32")
WORDS = ("what color is the shape red blue green circle square triangle gray background how many objects "
         "are there in this image left right of the picture describe answer").split()
CORPUS = ["A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.",
          "USER: What color is the shape? ASSISTANT: Red", "a red circle on a gray background",
          " ".join(WORDS)] * 20


def build_tiny_llava(folder: Path, seed: int = 0, save_to: Path | None = None):
    """Random tiny LLaVA parts (fp32) built under ``folder``; ``save_to`` also writes the
    transformers-layout model folder that :func:`llava_core.model.checkpoints.load_llava` reads."""
    from llava_core.model.build import build_llava
    from llava_core.model.tiny import build_tiny_parts

    folder = Path(folder)
    build_tiny_parts(folder, CORPUS, SYNTHETIC, seed=seed)
    torch.manual_seed(seed)
    parts = build_llava(MODEL, folder)
    if save_to is not None:
        parts.model.save_pretrained(save_to)
        parts.tokenizer.save_pretrained(save_to)
        parts.image_processor.save_pretrained(save_to)
    return parts


def make_questions(folder: Path, n: int, seed: int = 0, max_new_tokens: int = 16,
                   image_every: int = 3) -> list[EvalQuestion]:
    """``n`` questions of 1-30 random words; two of every ``image_every`` carry an image of
    varied size and colour (so pad-to-square and mixed batches are exercised)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        image = None
        if i % image_every:
            image = folder / f"img{i}.png"
            Image.new("RGB", (16 + rng.randrange(32), 16 + rng.randrange(32)),
                      tuple(rng.randrange(256) for _ in range(3))).save(image)
            image = str(image)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30)))
        out.append(EvalQuestion(i, text, image, max_new_tokens, {}))
    return out
