"""``conversation_template: chat``: a record rendered with the tokenizer's own chat template.

Models beyond Vicuna (Llama-3-Instruct, Qwen2.5/Qwen3, Gemma, Mistral) were instruction-tuned on
their own prompt format, with their own end-of-turn token. This template renders a LLaVA record
with ``tokenizer.apply_chat_template`` (the jinja template shipped in ``tokenizer_config.json``):
human turns become ``user`` messages, gpt turns ``assistant`` messages, an optional leading
``system`` turn a ``system`` message. ``<image>`` stays in the user's text, where ``encode`` turns it
into the image tokens (one placeholder id, expanded), so the ids are exactly
``apply_chat_template(..., tokenize=True)``'s for the same conversation.

The loss covers, for each assistant message, exactly what the template renders after that
message's role header, through the end-of-turn token that closes it (``<|eot_id|>``,
``<|im_end|>``, ``<end_of_turn>``): never the role headers, the system text, the user turns or BOS.
The header ends where the template's generation prompt for the conversation so far ends (it is a
prefix of the whole rendering), so whatever a template puts inside an assistant turn (Qwen3's empty
``<think>`` block on the last turn) is supervised as the model must produce it. Evaluation prompts
are the generation prompt of one user message (``enable_thinking=False`` for templates that know
it, so a Qwen3 answer starts with the answer); generation stops at the end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llava_core.data.conversation import Rendered, _prepare_turns
from llava_core.data.formats import IMAGE_TOKEN

CHAT = "chat"
#: Passed to every template: templates that know it (Qwen3) then open the answer without reasoning.
TEMPLATE_KWARGS = {"enable_thinking": False}


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _need_template(tokenizer: Any) -> None:
    if tokenizer is None or not has_chat_template(tokenizer):
        name = getattr(tokenizer, "name_or_path", None) or "this tokenizer"
        raise ValueError(f"conversation template 'chat' needs a tokenizer with a chat_template; {name} has none "
                         "(use its instruct variant, or a LLaVA template such as vicuna_v1)")


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool, **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt, **kwargs)


def to_messages(conversations: list[dict], *, has_image: bool) -> list[dict]:
    """A LLaVA record's turns as chat messages (``<image>`` first in the first user turn, as the
    LLaVA templates place it; a leading ``{"from": "system"}`` turn as the system message)."""
    system = []
    if conversations and isinstance(conversations[0], dict) and conversations[0].get("from") == "system":
        system = [{"role": "system", "content": str(conversations[0].get("value", ""))}]
        conversations = conversations[1:]
    turns = _prepare_turns(conversations, has_image)
    return system + [{"role": ("user", "assistant")[role], "content": value} for role, value in turns]


def end_of_turn(tokenizer: Any, text: str, at: int) -> str:
    """The end-of-turn token that closes an assistant message whose content ends at ``text[at]``: the
    added token the template renders right after the content."""
    added = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)
    for token in added:
        if token and text.startswith(token, at):
            return token
    raise ValueError(f"the chat template renders {text[at:at + 40]!r} after an assistant message, not an "
                     "end-of-turn token: this template cannot be supervised by the chat rule")


def render_chat(conversations: list[dict], tokenizer: Any, *, has_image: bool) -> Rendered:
    """Render a LLaVA record with the tokenizer's chat template and the spans the loss covers."""
    _need_template(tokenizer)
    messages = to_messages(conversations, has_image=has_image)
    if not has_image and any(IMAGE_TOKEN in m["content"] for m in messages):
        raise ValueError(f"a text-only record holds {IMAGE_TOKEN!r}: with the chat template it would become an "
                         "image placeholder without an image")
    text = _render(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or not message["content"].strip():
            continue
        head = _render(tokenizer, messages[:i], True)
        if text.startswith(head) and len(head) >= pos:
            start = len(head)  # where the template's generation prompt ends: the role header's end
        else:  # a template that renders the history differently: find the header by searching
            start = _header_end(tokenizer, messages[:i], text, pos)
        end = _content_end(text, message["content"], start, i)
        end += len(end_of_turn(tokenizer, text, end))
        spans.append((start, end))
        pos = end
    return Rendered(text, spans, chat_template=True)


def _content_end(text: str, content: str, start: int, index: int) -> int:
    """Where assistant message ``index`` ends in ``text``: templates differ on whether they trim it
    (Llama-3 does, Qwen does not), so the content is looked for as given, then trimmed."""
    for candidate in (content, content.strip()):
        found = text.find(candidate, start)
        if found >= 0:
            return found + len(candidate)
    raise ValueError(f"assistant message {index} is not in the chat template's rendering")


def _header_end(tokenizer: Any, history: list[dict], text: str, pos: int) -> int:
    """The end of the next assistant header in ``text`` after ``pos``: the header being what the
    generation prompt adds to the rendering of ``history``."""
    bare, prompt = _render(tokenizer, history, False), _render(tokenizer, history, True)
    header = prompt[len(bare):] if prompt.startswith(bare) else ""
    at = text.find(header, pos) if header else -1
    if at < 0:
        raise ValueError("cannot find the assistant's role header in the chat template's rendering")
    return at + len(header)


def render_chat_prompt(question: str, tokenizer: Any, *, has_image: bool, system: str | None = None,
                       history: Sequence[tuple[str, str]] = ()) -> str:
    """The generation prompt of one question (``<image>`` first, as the eval scripts put it),
    after ``history``'s (question, answer) turns (the image going with the first question)."""
    _need_template(tokenizer)
    questions = [q for q, _ in history] + [question]
    if has_image:
        questions[0] = IMAGE_TOKEN + "\n" + questions[0].replace(IMAGE_TOKEN, "").strip()
    if any(IMAGE_TOKEN in q for q in questions[int(has_image):]):
        raise ValueError(f"a question contains {IMAGE_TOKEN!r}: only the image's own place may hold it")
    messages = [{"role": "system", "content": system}] if system else []
    for q, (_, a) in zip(questions[:-1], history, strict=True):
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": questions[-1]})
    return _render(tokenizer, messages, True, **TEMPLATE_KWARGS)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The ids generation stops at: the end-of-turn token the template closes an assistant message
    with, and the tokenizer's EOS."""
    probe = render_chat([{"from": "human", "value": "q"}, {"from": "gpt", "value": "PROBE_ANSWER"}], tokenizer,
                        has_image=False)
    at = probe.text.find("PROBE_ANSWER") + len("PROBE_ANSWER")
    ids = [tokenizer.convert_tokens_to_ids(end_of_turn(tokenizer, probe.text, at))]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
