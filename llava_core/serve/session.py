"""A multi-turn conversation with one model: the evaluation's prompt, image and stop token, turn
after turn.

One code path with :mod:`llava_core.evaluate.generate`: the prompt is
:func:`~llava_core.data.conversation.render_prompt` (with the earlier turns as history), the ids
are the evaluation's ``_encode_prompt``, the image is ``process_image`` with the evaluation's
aspect mode, generation stops at ``stop_ids`` and the answer is cut and decoded as the evaluation
cuts it. So the first answer of a greedy chat is the answer ``llava-core evaluate`` gives to the
same question (tests/test_chat.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from llava_core.data.conversation import render_prompt
from llava_core.data.formats import IMAGE_TOKEN
from llava_core.data.images import process_image
from llava_core.evaluate.generate import _cut, _encode_prompt, stop_ids


@dataclass
class Sampling:
    """Generation settings: greedy (the evaluation's) unless ``temperature`` > 0."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512

    def kwargs(self) -> dict:
        if self.temperature <= 0:
            return {"do_sample": False, "num_beams": 1}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "num_beams": 1}


def open_image(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB, or a ValueError that says what is wrong with it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not an image this machine can decode ({e})") from None


@dataclass
class ChatSession:
    """One conversation: ``parts`` (a loaded LLaVA), its template, the image and the turns so far."""

    parts: object
    template: str
    aspect: str = "pad"
    sampling: Sampling = field(default_factory=Sampling)
    image: Image.Image | None = None
    image_path: str | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)

    def set_image(self, path: str | Path) -> None:
        """Use the image at ``path``; the conversation starts again (its first turn holds the image)."""
        self.image, self.image_path = open_image(path), str(path)
        self.turns = []

    def reset(self) -> None:
        """Forget the turns and the image."""
        self.image, self.image_path, self.turns = None, None, []

    def prompt(self, question: str) -> str:
        """The prompt the model is given for ``question`` after the turns so far."""
        return render_prompt(self.template, question, has_image=self.image is not None,
                             tokenizer=self.parts.tokenizer, history=self.turns)

    @torch.inference_mode()
    def stream(self, question: str) -> Iterator[str]:
        """Answer ``question``, yielding the text as it is generated; the answer joins the turns."""
        from transformers import TextIteratorStreamer

        question = question.strip()
        if not question:
            raise ValueError("empty question")
        if IMAGE_TOKEN in question:
            raise ValueError(f"{IMAGE_TOKEN} is the image's place, set with --image or /image, not typed")
        model, tok = self.parts.model, self.parts.tokenizer
        model.eval()
        device = next(model.parameters()).device
        ids = torch.tensor([_encode_prompt(self.prompt(question), self.parts, self.template)], device=device)
        extra = {}
        if self.image is not None:  # the image stays in the first turn: every prompt holds it
            pixels = process_image(self.image, self.parts.image_processor, self.aspect)
            extra["pixel_values"] = pixels.unsqueeze(0).to(device, next(model.parameters()).dtype)
        eos = stop_ids(self.template, tok)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        result: dict = {}

        def work() -> None:
            try:
                result["out"] = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **extra,
                                               max_new_tokens=self.sampling.max_new_tokens, eos_token_id=eos,
                                               pad_token_id=tok.pad_token_id, streamer=streamer,
                                               **self.sampling.kwargs())
            except BaseException as e:  # surfaced in the caller's thread below
                result["error"] = e
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if "error" in result:
            raise result["error"]
        new = result["out"][0, ids.shape[1]:].tolist()
        answer = tok.decode(_cut(new, self.sampling.max_new_tokens, eos), skip_special_tokens=True).strip()
        self.turns.append((question, answer))

    def ask(self, question: str) -> str:
        """Answer ``question`` (no streaming) and return the answer."""
        for _ in self.stream(question):
            pass
        return self.turns[-1][1]

    def record(self) -> dict:
        """The conversation as a LLaVA training record (``image`` and ``conversations``)."""
        conversations = []
        for i, (q, a) in enumerate(self.turns):
            value = f"{IMAGE_TOKEN}\n{q}" if i == 0 and self.image is not None else q
            conversations += [{"from": "human", "value": value}, {"from": "gpt", "value": a}]
        rec = {"id": "chat", "conversations": conversations}
        if self.image_path:
            rec["image"] = self.image_path
        return rec

    def save(self, path: str | Path) -> Path:
        """Write :meth:`record` as a one-record LLaVA JSON file (a list, as the training files)."""
        from llava_core.io import atomic_write

        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            json.dump([self.record()], fh, indent=2, ensure_ascii=False)
        return path
