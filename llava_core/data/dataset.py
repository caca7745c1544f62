"""Training samples from LLaVA records: render, tokenise with label masks, load the image.

Work happens lazily per sample (as upstream's ``lazy_preprocess``), so a 665K-record set costs
nothing to open. The records come from a training index (``llava_core/data/index.py``: the
filter stage's memory-mapped Arrow folder, whose records are decoded one at a time) or from any
sequence of record dicts. Text-only records produce no image tokens and no pixels, so they can
share a batch with image records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from llava_core.data.conversation import render
from llava_core.data.images import process_image
from llava_core.data.index import modality_length
from llava_core.data.tokenize import IGNORE_INDEX, encode


class SupervisedDataset(torch.utils.data.Dataset):
    """LLaVA records -> ``{"input_ids", "labels", "pixel_values", "truncated"}``.

    ``records``: a :class:`~llava_core.data.index.TrainingIndex` (what training opens) or any
    sequence whose ``records[i]`` is record ``i`` as a dict (a list, in tests).
    """

    def __init__(self, records: Sequence[dict], image_root: str | Path, *, template: str, aspect: str,
                 tokenizer, image_processor, num_image_tokens: int, max_length: int, truncation: str = "text"):
        self.records, self.image_root = records, Path(image_root)
        self.template, self.aspect = template, aspect
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self.num_image_tokens, self.max_length, self.truncation = num_image_tokens, max_length, truncation

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        has_image = "image" in rec
        rendered = render(self.template, rec["conversations"], has_image=has_image, tokenizer=self.tokenizer)
        enc = encode(rendered, self.tokenizer,
                     max_length=self.max_length, num_image_tokens=self.num_image_tokens, has_image=has_image,
                     truncation=self.truncation)
        pixels = None
        if has_image:
            with Image.open(self.image_root / rec["image"]) as img:
                pixels = process_image(img.convert("RGB"), self.image_processor, self.aspect)
        return {"input_ids": torch.tensor(enc.input_ids), "labels": torch.tensor(enc.labels),
                "pixel_values": pixels, "truncated": enc.truncated}

    def modality_lengths(self) -> list[int]:
        """Word counts, positive for image records and negative for text-only ones (upstream's rule).

        A training index has them precomputed (one column, no record decoded); any other sequence
        is walked record by record.
        """
        precomputed = getattr(self.records, "modality_lengths", None)
        if precomputed is not None:
            return precomputed()
        return [modality_length(rec) for rec in self.records]


class Collator:
    """Right-pad a list of samples into a batch; count truncated samples.

    A batch without images has no ``pixel_values`` (upstream's collator stacks a blank image per
    text-only sample instead); the model's training forward runs a blank image itself then, so
    every rank of a ZeRO run calls the vision tower and projector (llava_core/model/training_forward.py).
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, samples: list[dict]) -> dict:
        ids = torch.nn.utils.rnn.pad_sequence([s["input_ids"] for s in samples], batch_first=True,
                                              padding_value=self.pad_token_id)
        labels = torch.nn.utils.rnn.pad_sequence([s["labels"] for s in samples], batch_first=True,
                                                 padding_value=IGNORE_INDEX)
        mask = torch.zeros_like(ids, dtype=torch.long)
        for row, s in enumerate(samples):
            mask[row, : len(s["input_ids"])] = 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask,
                 "num_truncated": torch.tensor(sum(bool(s["truncated"]) for s in samples))}
        pixels = [s["pixel_values"] for s in samples if s["pixel_values"] is not None]
        if pixels:
            batch["pixel_values"] = torch.stack(pixels)
        return batch
