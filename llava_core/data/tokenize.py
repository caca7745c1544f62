"""Rendered conversation -> ``input_ids``/``labels`` for ``LlavaForConditionalGeneration``.

The token stream is the one the released LLaVA-1.5 checkpoints were trained and evaluated on
(spec 2.3b). Upstream's ``tokenizer_image_token`` splits the prompt at ``<image>`` and tokenises
each text chunk on its own, with the slow Llama tokenizer of ``transformers==4.31``, which behaved
as SentencePiece's *legacy* mode whatever the folder's ``legacy`` flag said: every chunk, and
every piece of text after a special token such as ``</s>``, starts with SentencePiece's word-start
piece (``<image>`` ``▁`` ``<0x0A>`` ...; ``</s>`` ``▁US`` ``ER``; a caption ``▁a``, not ``a``). Here
:func:`make_tokenizer_for_llava` gives a Llama tokenizer that exact legacy pre-processing, whatever
its ``legacy`` flag or transformers version, and :func:`encode` tokenises text chunk by chunk
between the special tokens, the way upstream does.

Labels come from character spans (:func:`llava_core.data.conversation.render`): a token is
supervised iff its character offsets overlap a span. Upstream instead re-tokenises pieces of the
prompt and counts tokens; on the legacy stream both give the same mask (``tests/test_llama_stream.py``
checks that against upstream's arithmetic), and offsets cannot drift when pieces merge differently.

transformers' LLaVA replaces one image-token id per image feature, so the single ``<image>`` id
is expanded to ``num_image_tokens`` copies (576 for CLIP-L/14 at 336 px). ``truncation="text"``
(the default, what the released checkpoints were trained with) cuts the text tokens to
``max_length`` with the image counted as one token, so a sample may reach ``max_length`` +
``num_image_tokens`` - 1 positions; ``"expanded"`` (upstream since 2023-11-04) also cuts the
sequence after the image is expanded.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any

from llava_core.data.conversation import Rendered
from llava_core.data.formats import IMAGE_TOKEN

IGNORE_INDEX = -100
TRUNCATION_MODES = ("text", "expanded")


@dataclass
class Encoded:
    """Token ids and labels (``IGNORE_INDEX`` where unsupervised); ``truncated`` if cut.

    ``num_text_tokens`` is the length before truncation with the image counted as one token (the
    length upstream's collator compared with ``model_max_length``).
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool
    num_text_tokens: int = 0

    @property
    def num_supervised(self) -> int:
        """Tokens that carry loss; a truncated sample may have none and the caller should count it."""
        return sum(label != IGNORE_INDEX for label in self.labels)


def make_tokenizer_for_llava(tokenizer: Any) -> Any:
    """Register ``<image>`` as a special token, make sure a pad token exists, and give a Llama
    tokenizer SentencePiece's legacy pre-processing (:func:`use_legacy_sentencepiece`); returns it.

    The pad token is ``unk`` when there is one, as upstream sets for every version except v0;
    otherwise ``<pad>`` is added. Added tokens grow the vocabulary: resize the model's embeddings.
    Idempotent: every loader calls it, since a saved tokenizer is re-read with its config's flags.
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
    use_legacy_sentencepiece(tokenizer)
    return tokenizer


def use_legacy_sentencepiece(tokenizer: Any) -> bool:
    """Give a SentencePiece-BPE (Llama) fast tokenizer the legacy normaliser; True if it is one.

    Legacy SentencePiece prepends ``▁`` to every piece of text it encodes, including the text
    right after a special token, and turns spaces into ``▁``: exactly the normaliser
    ``Prepend("▁")`` + ``Replace(" ", "▁")`` with no pre-tokeniser, which is what Llama's legacy
    ``tokenizer.json`` holds. transformers 5 rebuilds Llama tokenizers with a ``Metaspace``
    pre-tokeniser instead: with ``legacy: false`` (``prepend_scheme="first"``) no ``▁`` follows
    ``</s>`` or ``<image>``; even with ``legacy: true`` (``"always"``) a leading space is not
    doubled. Both share the vocabulary and merges, so swapping the pre-processing is enough.
    Other tokenizers (byte-level BPE, custom Metaspace pipelines) are left alone.
    """
    from tokenizers import models

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.model, models.BPE) or not backend.model.byte_fallback:
        return False
    pre = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else None
    norm = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else None
    if pre is None and norm == _LEGACY_STATE:
        return True
    metaspace = (isinstance(pre, dict) and pre.get("type") == "Metaspace" and pre.get("replacement") == "▁"
                 and not pre.get("split", True))
    if not metaspace or norm is not None:
        return False
    backend.normalizer = _legacy_normalizer()
    backend.pre_tokenizer = None
    return True


def _legacy_normalizer() -> Any:
    """Llama's legacy SentencePiece pre-processing: ``▁`` before every piece, spaces as ``▁``."""
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])


_LEGACY_STATE = json.loads(_legacy_normalizer().__getstate__())


def _supervised_mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """True for tokens whose ``[a, b)`` overlaps a span; zero-width tokens (BOS) never do."""
    spans = sorted(s for s in spans if s[1] > s[0])
    ends = [e for _, e in spans]
    mask = []
    for a, b in offsets:
        k = bisect.bisect_right(ends, a)  # first span ending after a
        mask.append(b > a and k < len(spans) and spans[k][0] < b)
    return mask


def _prefix_ids(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts before any text (``[BOS]`` for Llama)."""
    full = list(tokenizer("a")["input_ids"])
    bare = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    k = len(full) - len(bare)
    return full[:k] if k >= 0 and full[k:k + len(bare)] == bare else []


def _text_tokens(text: str, tokenizer: Any, *, image_token: str, has_image: bool
                 ) -> tuple[list[int], list[tuple[int, int]], int | None]:
    """Ids and character offsets of ``text`` as upstream tokenises it; also the image token's id.

    Upstream's chunks: the text is cut at ``<image>`` (only when the sample has an image; in a
    text-only sample a literal ``<image>`` is ordinary text, since Vicuna's vocabulary has no such
    token) and at the tokenizer's other special tokens (``</s>`` ...), and each piece in between
    is tokenised on its own, its special-looking substrings included as text.
    """
    specials = sorted({t for t in tokenizer.all_special_tokens if t and t != image_token}, key=len, reverse=True)
    if has_image:
        specials.insert(0, image_token)
    pattern = re.compile("|".join(re.escape(t) for t in specials)) if specials else None
    pieces: list[tuple[int, int, bool]] = []  # (start, end, is_special)
    pos = 0
    for m in pattern.finditer(text) if pattern else ():
        if m.start() > pos:
            pieces.append((pos, m.start(), False))
        pieces.append((m.start(), m.end(), True))
        pos = m.end()
    if pos < len(text):
        pieces.append((pos, len(text), False))
    texts = [text[a:b] for a, b, special in pieces if not special]
    encoded = iter([])
    if texts:
        batch = tokenizer(texts, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
        encoded = iter(zip(batch["input_ids"], batch["offset_mapping"], strict=True))
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    image_id = None
    for a, b, special in pieces:
        if special:
            tid = tokenizer.convert_tokens_to_ids(text[a:b])
            if text[a:b] == image_token:
                image_id = tid
            ids.append(tid)
            offsets.append((a, b))
        else:
            piece_ids, piece_offsets = next(encoded)
            ids.extend(piece_ids)
            offsets.extend((a + s, a + e) for s, e in piece_offsets)
    return ids, offsets, image_id


def _templated_tokens(text: str, tokenizer: Any, *, image_token: str, has_image: bool
                      ) -> tuple[list[int], list[tuple[int, int]], int | None]:
    """Ids and offsets of a chat template's rendering, tokenised as a whole with its special tokens
    (``apply_chat_template(..., tokenize=True)``'s ids; ``<image>`` is one added token)."""
    batch = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    image_id = tokenizer.convert_tokens_to_ids(image_token) if has_image else None
    return list(batch["input_ids"]), [tuple(o) for o in batch["offset_mapping"]], image_id


def encode(rendered: Rendered, tokenizer: Any, *, max_length: int, num_image_tokens: int,
           has_image: bool | None = None, truncation: str = "text", image_token: str = IMAGE_TOKEN) -> Encoded:
    """Tokenise ``rendered.text`` as upstream does, label it from the spans, expand the image, truncate.

    ``has_image`` None means "the text contains ``image_token``". A text-only sample
    (``has_image=False``) keeps a literal ``<image>`` in its text as ordinary text.

    Raises ``ValueError`` if an image sample has more than one ``<image>``, if the tokenizer does
    not know ``image_token`` as one token (see :func:`make_tokenizer_for_llava`), or if truncation
    would cut into the image block (features and tokens would no longer match). A sample cut
    elsewhere keeps its remaining supervised tokens, possibly none, and is flagged.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("encode needs a fast tokenizer (character offsets); got "
                        f"{type(tokenizer).__name__}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if truncation not in TRUNCATION_MODES:
        raise ValueError(f"truncation must be one of {TRUNCATION_MODES}, got {truncation!r}")
    text = rendered.text
    if has_image is None:
        has_image = image_token in text
    n_images = text.count(image_token) if has_image else 0
    if n_images > 1:
        raise ValueError(f"{n_images} {image_token!r} tokens in one sample; LLaVA-1.5 uses one image")
    if n_images and num_image_tokens < 1:
        raise ValueError(f"num_image_tokens must be positive, got {num_image_tokens}")

    if rendered.chat_template:
        ids, offsets, image_id = _templated_tokens(text, tokenizer, image_token=image_token, has_image=bool(n_images))
    else:
        ids, offsets, image_id = _text_tokens(text, tokenizer, image_token=image_token, has_image=bool(n_images))
    if n_images and (image_id is None or image_id == tokenizer.unk_token_id):
        raise ValueError(f"the tokenizer does not encode {image_token!r} as a single token; "
                         "call make_tokenizer_for_llava first")
    prefix = [] if rendered.chat_template else _prefix_ids(tokenizer)
    mask = [False] * len(prefix) + _supervised_mask(offsets, rendered.supervised)
    ids = prefix + ids

    # Upstream's collator cuts the text tokens (the image still one token) to model_max_length.
    num_text_tokens = len(ids)
    truncated = num_text_tokens > max_length
    ids, mask = ids[:max_length], mask[:max_length]
    if n_images and image_id not in ids:
        raise ValueError(f"the image token lies beyond max_length={max_length} (the sample has {num_text_tokens} "
                         "text tokens): the image block would be cut off")

    input_ids: list[int] = []
    labels: list[int] = []
    image_end = 0
    for tid, sup in zip(ids, mask, strict=True):
        if n_images and tid == image_id:
            input_ids.extend([tid] * num_image_tokens)
            labels.extend([IGNORE_INDEX] * num_image_tokens)
            image_end = len(input_ids)
        else:
            input_ids.append(tid)
            labels.append(tid if sup else IGNORE_INDEX)

    if truncation == "expanded" and len(input_ids) > max_length:
        if image_end > max_length:
            raise ValueError(f"the image block ends at position {image_end}, beyond max_length={max_length}")
        input_ids, labels, truncated = input_ids[:max_length], labels[:max_length], True
    return Encoded(input_ids, labels, truncated, num_text_tokens)


def expanded_length(num_text_tokens: int, has_image: bool, num_image_tokens: int) -> int:
    """Positions after the image is expanded, from the text length with the image as one token."""
    return num_text_tokens + (num_image_tokens - 1 if has_image else 0)
