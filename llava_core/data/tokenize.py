"""Rendered conversation -> ``input_ids``/``labels`` for ``LlavaForConditionalGeneration``.

Upstream tokenises the prompt piece by piece around ``<image>`` and derives the label mask from
token counts of re-tokenised fragments; when fragments tokenise differently in context the mask
is off and the sample silently gets zero loss ("tokenization mismatch"). Here the text is
tokenised once with a fast tokenizer, and a token is supervised iff its character offsets overlap
a span from :func:`llava_core.data.conversation.render`, so the mask cannot drift.

transformers' LLaVA replaces one image-token id per image feature, so the single ``<image>`` id
is expanded to ``num_image_tokens`` copies (576 for CLIP-L/14 at 336 px) before truncation, and
``max_length`` counts them (upstream v1.5 cut text to 2048 before expanding, see the spec 1).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from llava_core.data.conversation import Rendered
from llava_core.data.formats import IMAGE_TOKEN

IGNORE_INDEX = -100


@dataclass
class Encoded:
    """Token ids and labels (``IGNORE_INDEX`` where unsupervised); ``truncated`` if cut."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def num_supervised(self) -> int:
        """Tokens that carry loss; a truncated sample may have none and the caller should count it."""
        return sum(label != IGNORE_INDEX for label in self.labels)


def make_tokenizer_for_llava(tokenizer: Any) -> Any:
    """Register ``<image>`` as a special token and make sure a pad token exists; returns ``tokenizer``.

    The pad token is ``unk`` when there is one, as upstream sets for every version except v0;
    otherwise ``<pad>`` is added. Added tokens grow the vocabulary: resize the model's embeddings.
    """
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        try:  # transformers 5: keep any extra special tokens already registered
            tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]},
                                         replace_extra_special_tokens=False)
        except TypeError:
            tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]},
                                         replace_additional_special_tokens=False)
    if tokenizer.pad_token is None:
        if tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return tokenizer


def _supervised_mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """True for tokens whose ``[a, b)`` overlaps a span; zero-width tokens (BOS) never do."""
    spans = sorted(s for s in spans if s[1] > s[0])
    ends = [e for _, e in spans]
    mask = []
    for a, b in offsets:
        k = bisect.bisect_right(ends, a)  # first span ending after a
        mask.append(b > a and k < len(spans) and spans[k][0] < b)
    return mask


def encode(rendered: Rendered, tokenizer: Any, *, max_length: int, num_image_tokens: int,
           image_token: str = IMAGE_TOKEN) -> Encoded:
    """Tokenise ``rendered.text`` once, label it from the spans, expand the image, truncate.

    Raises ``ValueError`` if the text has more than one image, if the tokenizer does not know
    ``image_token`` as one token (see :func:`make_tokenizer_for_llava`), or if the image block
    itself does not fit in ``max_length`` (cutting into it would desynchronise features and tokens).
    A sample cut elsewhere keeps its remaining supervised tokens, possibly none, and is flagged.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("encode needs a fast tokenizer (character offsets); got "
                        f"{type(tokenizer).__name__}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    enc = tokenizer(rendered.text, add_special_tokens=True, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    mask = _supervised_mask([tuple(o) for o in enc["offset_mapping"]], rendered.supervised)

    n_images = rendered.text.count(image_token)
    image_id = None
    if n_images:
        if n_images > 1:
            raise ValueError(f"{n_images} {image_token!r} tokens in one sample; LLaVA-1.5 uses one image")
        if num_image_tokens < 1:
            raise ValueError(f"num_image_tokens must be positive, got {num_image_tokens}")
        image_id = tokenizer.convert_tokens_to_ids(image_token)
        if image_id is None or image_id == tokenizer.unk_token_id or ids.count(image_id) != n_images:
            raise ValueError(f"the tokenizer does not encode {image_token!r} as a single token; "
                             "call make_tokenizer_for_llava first")

    input_ids: list[int] = []
    labels: list[int] = []
    image_end = 0
    for tid, sup in zip(ids, mask, strict=True):
        if tid == image_id:
            input_ids.extend([tid] * num_image_tokens)
            labels.extend([IGNORE_INDEX] * num_image_tokens)
            image_end = len(input_ids)
        else:
            input_ids.append(tid)
            labels.append(tid if sup else IGNORE_INDEX)

    truncated = len(input_ids) > max_length
    if truncated:
        if image_end > max_length:
            raise ValueError(f"the image block ends at position {image_end}, beyond max_length={max_length}")
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return Encoded(input_ids, labels, truncated)
