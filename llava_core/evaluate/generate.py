"""Batched greedy generation with left padding, producing official answer-file rows.

Questions are sorted by prompt length so batches carry little padding; results come back in
the question order. Greedy decoding (``do_sample=False``, one beam) as the paper evaluates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from tqdm import tqdm

from llava_core.data.conversation import Rendered, render_prompt
from llava_core.data.formats import make_answer
from llava_core.data.images import process_image
from llava_core.data.tokenize import encode
from llava_core.evaluate.benchmarks.base import EvalQuestion


def _encode_prompt(prompt: str, parts) -> list[int]:
    # No supervised spans: only the ids (with the image token expanded) are needed.
    return encode(Rendered(prompt, []), parts.tokenizer, max_length=10**9,
                  num_image_tokens=parts.num_image_tokens).input_ids


@torch.inference_mode()
def generate_answers(parts, questions: list[EvalQuestion], *, template: str, aspect: str, batch_size: int,
                     max_new_tokens: int | None, model_id: str, progress: bool = True,
                     on_batch: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Answer ``questions`` greedily; ``max_new_tokens`` None uses each question's default."""
    model, tok = parts.model, parts.tokenizer
    model.eval()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    prompts = [render_prompt(template, q.text, has_image=q.image is not None) for q in questions]
    encoded = [_encode_prompt(p, parts) for p in prompts]
    order = sorted(range(len(questions)), key=lambda i: (len(encoded[i]), i))
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
        pixels = []
        for i in idx:
            if questions[i].image is not None:
                with Image.open(questions[i].image) as img:
                    pixels.append(process_image(img.convert("RGB"), parts.image_processor, aspect))
        limit = max_new_tokens or max(questions[i].default_max_new_tokens for i in idx)
        # transformers 5 runs the vision encoder whenever the key is present, even for None.
        extra = {"pixel_values": torch.stack(pixels).to(device, dtype)} if pixels else {}
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **extra,
                             max_new_tokens=limit, do_sample=False, num_beams=1,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
        rows = []
        for row, i in enumerate(idx):
            q = questions[i]
            answers[i] = make_answer(q.question_id, q.text, texts[row].strip(), model_id, **q.extra)
            rows.append(answers[i])
        if on_batch:
            on_batch(rows)
        bar.update(len(idx))
    bar.close()
    return [answers[i] for i in range(len(questions))]
