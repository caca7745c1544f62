"""Conversation templates: LLaVA records -> prompt text plus the character spans to supervise.

The strings reproduce haotian-liu/LLaVA (``llava/conversation.py``, ``llava/train/train.py``).
Masks are returned as *character* spans rather than token counts: upstream derives its masks by
re-tokenising pieces of the prompt and counting tokens, which breaks whenever pieces merge
differently in context (the "tokenization mismatch" that silently zeroes a sample's loss).
:mod:`llava_core.data.tokenize` maps the spans onto tokens with the tokenizer's offsets instead.

Templates
---------
``plain`` (alias ``v0_plain``), stage 1 (``preprocess_plain``)
    ``"<image>" + caption + "\\n"``; the human text is discarded; caption and newline supervised.
``vicuna_v1`` (alias ``v1``), stage 2 and the v1.5 eval scripts (``preprocess_v1``)
    ``"{system} USER: {q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>"``.
``llava_v1``
    Same, with "curious human"/"the human's questions": the argparse default of ``model_vqa*.py``
    that the v1.5 eval scripts override. Kept for checking that trap, not for training.
``chat``
    The tokenizer's own chat template (Llama-3, Qwen, Gemma ...): :mod:`llava_core.data.chat_template`.
``llava_v0`` (alias ``llava_v1_0``), LLaVA-1.0 (April 2023) finetuning
    At the initial release (commit ``8959d5c``) ``--version v1`` meant ``conv_v1_2``: roles
    ``Human``/``Assistant``, separator ``###``, and training went through the generic
    ``preprocess`` -> ``_add_speaker_and_signal``: ``"{system}\\n\\n### Human: {q}\\n### Assistant:
    {a}\\n### "``. Current ``main`` keeps the same system/roles as ``conv_llava_v0`` and the same
    training path for ``--version v0``. Its *inference* prompt is ``Conversation.get_prompt`` with
    ``SeparatorStyle.SINGLE``: ``"{system}###Human: {q}###Assistant:"``, which differs from the
    training text (no blank line, no spaces around ``###``, no newlines): an upstream
    train/inference mismatch that :func:`render_prompt` reproduces on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from llava_core.data.formats import IMAGE_TOKEN

Style = Literal["plain", "two", "signal"]

_SYSTEM_USER = ("A chat between a curious user and an artificial intelligence assistant. "
                "The assistant gives helpful, detailed, and polite answers to the user's questions.")
_SYSTEM_HUMAN = ("A chat between a curious human and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the human's questions.")


@dataclass(frozen=True)
class Template:
    """One prompt format; ``style`` selects the rendering rule, the rest are upstream's fields."""

    name: str
    style: Style
    system: str
    roles: tuple[str, str]
    sep: str
    sep2: str | None
    source: str


_PLAIN = Template("plain", "plain", "", ("", ""), "\n", None,
                  "llava/conversation.py conv_llava_plain; train.py preprocess_plain")
_VICUNA_V1 = Template("vicuna_v1", "two", _SYSTEM_USER, ("USER", "ASSISTANT"), " ", "</s>",
                      "llava/conversation.py conv_vicuna_v1; train.py preprocess_v1")
_LLAVA_V1 = Template("llava_v1", "two", _SYSTEM_HUMAN, ("USER", "ASSISTANT"), " ", "</s>",
                     "llava/conversation.py conv_llava_v1 (model_vqa*.py argparse default)")
_LLAVA_V0 = Template("llava_v0", "signal", _SYSTEM_HUMAN, ("Human", "Assistant"), "###", None,
                     "commit 8959d5c conv_v1_2 ('v1' then) / main conv_llava_v0; "
                     "train.py preprocess -> _add_speaker_and_signal")

TEMPLATES: dict[str, Template] = {
    "plain": _PLAIN,
    "v0_plain": _PLAIN,
    "vicuna_v1": _VICUNA_V1,
    "v1": _VICUNA_V1,
    "llava_v1": _LLAVA_V1,
    "llava_v0": _LLAVA_V0,
    "llava_v1_0": _LLAVA_V0,
}

# _add_speaker_and_signal's markers for the LLaVA-1.0 training text.
_BEGIN_SIGNAL = "### "
_END_SIGNAL = "\n"


@dataclass
class Rendered:
    """Prompt text and the ``[start, end)`` character spans whose tokens carry the loss.
    ``chat_template``: rendered by the tokenizer's chat template, which writes its special tokens
    (BOS, role markers) into the text itself: tokenised as a whole, as ``apply_chat_template`` does."""

    text: str
    supervised: list[tuple[int, int]]
    chat_template: bool = False


def unknown_template_error(name: object) -> ValueError:
    """The error for a template name we do not know, listing the allowed ones."""
    return ValueError(f"unknown conversation template {name!r}; allowed: {', '.join(sorted([*TEMPLATES, 'chat']))}")


def get_template(name: str) -> Template:
    """Look a template (or alias) up, raising :func:`unknown_template_error` otherwise."""
    try:
        return TEMPLATES[name]
    except (KeyError, TypeError):
        raise unknown_template_error(name) from None


def _move_image_first(value: str) -> str:
    """``preprocess_multimodal`` on one turn: drop every ``<image>``, strip, put it in front.

    Upstream strips again afterwards, so an otherwise empty turn becomes ``"<image>"`` without
    the newline.
    """
    value = value.replace(IMAGE_TOKEN, "").strip()
    return (IMAGE_TOKEN + "\n" + value).strip()


def _prepare_turns(conversations: list[dict], has_image: bool) -> list[tuple[int, str]]:
    """Validate roles (human first, alternating) and place the image; returns (role index, value)."""
    turns: list[tuple[int, str]] = []
    for i, turn in enumerate(conversations):
        expected = ("human", "gpt")[i % 2]
        ok = isinstance(turn, dict) and turn.get("from") == expected and isinstance(turn.get("value"), str)
        if not ok:
            raise ValueError(f"turn {i}: expected {{'from': {expected!r}, 'value': str}}, got {turn!r}")
        turns.append((i % 2, turn["value"]))
    if not turns:
        raise ValueError("empty conversation")
    if not has_image:
        # Upstream leaves text-only turns as they are: a literal "<image>" is ordinary text there
        # (Vicuna's vocabulary has no such token); encode(..., has_image=False) tokenises it so.
        return turns
    # Upstream re-prefixes <image> in whichever turn holds it; records have it in the first human
    # turn, and one image per sample means exactly one token, so it always goes there.
    out = [(0, _move_image_first(turns[0][1]))]
    for role, value in turns[1:]:
        out.append((role, value.replace(IMAGE_TOKEN, "").strip() if IMAGE_TOKEN in value else value))
    return out


def render(template: str, conversations: list[dict], *, has_image: bool, tokenizer=None) -> Rendered:
    """Render a LLaVA record's ``conversations`` as training text with supervised spans.

    ``vicuna_v1``/``llava_v1``: each span runs from the space after ``ASSISTANT:`` to the end of
    the answer's ``</s>``. The space is included because upstream supervises every token after
    the ``ASSISTANT:`` tokens: Llama writes `` 2`` as ``["▁", "2"]``, so for numeric answers (and
    other non-merging starts) the lone ``▁`` is a supervised token that the model must learn to
    emit first; merged pieces such as ``▁Yes`` are supervised either way. An empty answer renders
    as bare ``ASSISTANT:`` without ``</s>`` (``get_prompt`` skips falsy messages) and has no span.

    ``plain``: exactly two turns; the span is caption + ``"\\n"``.

    ``llava_v0``: span = `` {answer}\\n###``, i.e. the answer and the ``###`` stop signal, as the
    LLaVA-1.0 paper describes. Upstream's ``_mask_targets`` additionally left the ``### Assistant:``
    header unmasked and drifted by one token per turn (each turn was counted with its own BOS);
    those accidents are not reproduced.
    """
    if template == "chat":  # the tokenizer's own template (llava_core/data/chat_template.py)
        from llava_core.data.chat_template import render_chat

        return render_chat(conversations, tokenizer, has_image=has_image)
    tpl = get_template(template)
    if conversations and isinstance(conversations[0], dict) and conversations[0].get("from") == "system":
        # Upstream's preprocess drops a first turn that is not the human's: the template's own
        # system prompt applies (the chat template makes it the system message instead).
        conversations = conversations[1:]
    turns = _prepare_turns(conversations, has_image)
    if tpl.style == "plain":
        return _render_plain(turns, has_image)
    if tpl.style == "two":
        return _render_two(tpl, turns)
    return _render_signal(tpl, turns)


def _render_plain(turns: list[tuple[int, str]], has_image: bool) -> Rendered:
    if len(turns) != 2 or not has_image:
        raise ValueError("the 'plain' template needs an image and exactly two turns (instruction, caption); "
                         f"got {len(turns)} turn(s), has_image={has_image}")
    text = IMAGE_TOKEN + turns[1][1] + _PLAIN.sep
    return Rendered(text, [(len(IMAGE_TOKEN), len(text))])


def _render_two(tpl: Template, turns: list[tuple[int, str]]) -> Rendered:
    seps = (tpl.sep, tpl.sep2 or "")
    parts = [tpl.system + seps[0]]
    pos = len(parts[0])
    spans: list[tuple[int, int]] = []
    for role, value in turns:
        if not value:
            chunk = tpl.roles[role] + ":"
        else:
            head = tpl.roles[role] + ":"
            chunk = head + " " + value + seps[role]
            if role == 1:
                spans.append((pos + len(head), pos + len(chunk)))
        parts.append(chunk)
        pos += len(chunk)
    return Rendered("".join(parts), spans)


def _render_signal(tpl: Template, turns: list[tuple[int, str]]) -> Rendered:
    text = tpl.system + "\n\n"
    spans: list[tuple[int, int]] = []
    for role, value in turns:
        head = _BEGIN_SIGNAL + tpl.roles[role] + ":"
        if role == 1:
            # from the space after "Assistant:" through the "###" that opens the next turn
            start = len(text) + len(head)
            spans.append((start, len(text) + len(head) + 1 + len(value) + len(_END_SIGNAL) + 3))
        text += head + " " + value + _END_SIGNAL
    text += _BEGIN_SIGNAL
    return Rendered(text, spans)


def render_prompt(template: str, question: str, *, has_image: bool, tokenizer=None,
                  history: Sequence[tuple[str, str]] = ()) -> str:
    """Generation prompt for one question, as upstream's eval scripts build it.

    The scripts prepend ``"<image>\\n"`` to the question and call ``get_prompt`` with an empty
    assistant turn: ``vicuna_v1`` ends with ``"ASSISTANT:"`` (no trailing space); ``llava_v0``
    gives ``"{system}###Human: {q}###Assistant:"``; ``plain`` gives ``"<image>\\n{q}\\n"``. One
    addition: ``plain`` with an empty question returns ``"<image>"``, the stage-1 training prefix,
    so a stage-1 checkpoint can be asked for a caption exactly as it was trained.

    ``history``: earlier (question, answer) turns of a chat, the image going with the first
    question. They are rendered as ``get_prompt`` renders a conversation (for ``vicuna_v1``, as the
    training text: ``... ASSISTANT: {a1}</s>USER: {q2} ASSISTANT:``), so with no history the prompt
    is the evaluation's.
    """
    if template == "chat":
        from llava_core.data.chat_template import render_chat_prompt

        return render_chat_prompt(question, tokenizer, has_image=has_image, history=history)
    tpl = get_template(template)
    questions = [q for q, _ in history] + [question]
    if has_image:
        first = questions[0].replace(IMAGE_TOKEN, "").strip() if IMAGE_TOKEN in questions[0] else questions[0]
        if tpl.style == "plain" and not first and not history:
            return IMAGE_TOKEN
        questions[0] = IMAGE_TOKEN + "\n" + first
    if any(IMAGE_TOKEN in q for q in questions[int(has_image):]):
        raise ValueError(f"a question contains {IMAGE_TOKEN!r}: only the image's own place may hold it")
    if tpl.style == "plain":
        if history:
            raise ValueError("the plain template (stage 1) has no turns: a chat needs a stage-2 template")
        return questions[0] + tpl.sep
    # TWO and SINGLE agree up to the question: system, sep, "USER: q", sep, "ASSISTANT:"; an answer
    # ends with sep2 (TWO) or sep (SINGLE).
    end = tpl.sep2 if tpl.style == "two" else tpl.sep
    turns = "".join(f"{tpl.roles[0]}: {q}{tpl.sep}{tpl.roles[1]}: {a}{end}" for q, (_, a) in zip(questions[:-1], history, strict=True))
    return f"{tpl.system}{tpl.sep}{turns}{tpl.roles[0]}: {questions[-1]}{tpl.sep}{tpl.roles[1]}:"
