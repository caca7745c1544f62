"""Exact prompt strings of the LLaVA templates (spec section 2) and their supervised spans."""

from __future__ import annotations

import pytest

from llava_core.data.conversation import TEMPLATES, render, render_prompt, unknown_template_error

SYS_USER = ("A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions.")
SYS_HUMAN = ("A chat between a curious human and an artificial intelligence assistant. "
             "The assistant gives helpful, detailed, and polite answers to the human's questions.")


def conv(*values: str) -> list[dict]:
    return [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(values)]


def spans_text(r) -> list[str]:
    return [r.text[a:b] for a, b in r.supervised]


def test_plain_discards_instruction_and_supervises_caption_and_newline():
    r = render("plain", conv("Describe the image briefly.\n<image>", "A dog runs on grass."), has_image=True)
    assert r.text == "<image>A dog runs on grass.\n"
    assert spans_text(r) == ["A dog runs on grass.\n"]
    assert TEMPLATES["v0_plain"] is TEMPLATES["plain"]


@pytest.mark.parametrize("bad", [conv("<image>\nq"), conv("<image>\nq", "a", "q2", "a2")])
def test_plain_needs_exactly_two_turns(bad):
    with pytest.raises(ValueError, match="two turns"):
        render("plain", bad, has_image=True)


def test_plain_needs_an_image():
    with pytest.raises(ValueError, match="needs an image"):
        render("plain", conv("q", "caption"), has_image=False)


def test_vicuna_v1_multi_turn_exact():
    r = render("vicuna_v1", conv("What is in the photo?\n<image>", "A cat.", "What colour is it?", "Black"),
               has_image=True)
    assert r.text == (f"{SYS_USER} USER: <image>\nWhat is in the photo? ASSISTANT: A cat.</s>"
                      "USER: What colour is it? ASSISTANT: Black</s>")
    # each answer plus its </s>, starting at the space after "ASSISTANT:"
    assert spans_text(r) == [" A cat.</s>", " Black</s>"]
    turns = conv("<image>\nq", "a")
    assert render("v1", turns, has_image=True) == render("vicuna_v1", turns, has_image=True)


def test_vicuna_v1_text_only():
    r = render("vicuna_v1", conv("Hi", "Hello!"), has_image=False)
    assert r.text == f"{SYS_USER} USER: Hi ASSISTANT: Hello!</s>"
    assert spans_text(r) == [" Hello!</s>"]


def test_llava_v1_differs_only_in_system_prompt():
    r = render("llava_v1", conv("<image>\nq", "a"), has_image=True)
    assert r.text == f"{SYS_HUMAN} USER: <image>\nq ASSISTANT: a</s>"


def test_vicuna_v1_empty_answer_has_no_sep_and_no_span():
    # Conversation.get_prompt skips falsy messages: role + ":" only, no "</s>".
    r = render("vicuna_v1", conv("q1", "", "q2", "a2"), has_image=False)
    assert r.text == f"{SYS_USER} USER: q1 ASSISTANT:USER: q2 ASSISTANT: a2</s>"
    assert spans_text(r) == [" a2</s>"]


def test_trailing_human_turn_is_rendered_unsupervised():
    r = render("vicuna_v1", conv("q1", "a1", "q2"), has_image=False)
    assert r.text == f"{SYS_USER} USER: q1 ASSISTANT: a1</s>USER: q2 "
    assert spans_text(r) == [" a1</s>"]


def test_llava_v0_training_text_exact():
    r = render("llava_v0", conv("<image>\nWhat is it?", "A cat.", "Colour?", "Black."), has_image=True)
    assert r.text == (f"{SYS_HUMAN}\n\n### Human: <image>\nWhat is it?\n### Assistant: A cat.\n"
                      "### Human: Colour?\n### Assistant: Black.\n### ")
    assert spans_text(r) == [" A cat.\n###", " Black.\n###"]
    assert TEMPLATES["llava_v1_0"] is TEMPLATES["llava_v0"]


@pytest.mark.parametrize(("value", "expected"), [
    ("What is this?\n<image>", "<image>\nWhat is this?"),
    ("<image>\nWhat is this?", "<image>\nWhat is this?"),
    ("What <image> is this?", "<image>\nWhat  is this?"),  # replace with '' keeps both spaces
    ("<image>", "<image>"),  # upstream strips again: no newline when nothing follows
    ("  What is this?  ", "<image>\nWhat is this?"),  # has_image without the token: prefixed anyway
])
def test_image_moves_to_front_of_first_turn(value, expected):
    r = render("vicuna_v1", conv(value, "a"), has_image=True)
    assert r.text == f"{SYS_USER} USER: {expected} ASSISTANT: a</s>"


def test_image_tokens_in_later_turns_are_removed():
    r = render("vicuna_v1", conv("q", "a <image>", "<image> q2", "b"), has_image=True)
    assert r.text == f"{SYS_USER} USER: <image>\nq ASSISTANT: a</s>USER: q2 ASSISTANT: b</s>"


def test_text_only_record_keeps_a_literal_image_token_as_text():
    # Upstream's preprocess_multimodal runs only for image records: a text-only record's text,
    # "<image>" included, is rendered as is (tokenize.encode then treats it as text).
    r = render("vicuna_v1", conv("see <image>\nq", "a"), has_image=False)
    assert r.text == f"{SYS_USER} USER: see <image>\nq ASSISTANT: a</s>"


@pytest.mark.parametrize("bad", [
    [], [{"from": "gpt", "value": "a"}], [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}],
    [{"from": "human", "value": 3}], [{"from": "user", "value": "q"}],
])
def test_bad_turns_rejected(bad):
    with pytest.raises(ValueError):
        render("vicuna_v1", bad, has_image=False)


def test_unknown_template_lists_allowed_names():
    with pytest.raises(ValueError, match="allowed: .*plain.*vicuna_v1"):
        render("vicuna_v2", conv("q", "a"), has_image=False)
    with pytest.raises(ValueError, match="allowed"):
        render_prompt("chatml", "q", has_image=False)
    assert "llava_v0" in str(unknown_template_error("x"))


def test_render_prompt_vicuna_v1_ends_without_space():
    p = render_prompt("vicuna_v1", "What is shown?\nAnswer the question using a single word or phrase.",
                      has_image=True)
    assert p == (f"{SYS_USER} USER: <image>\nWhat is shown?\nAnswer the question using a single word or "
                 "phrase. ASSISTANT:")
    assert render_prompt("vicuna_v1", "Hi", has_image=False) == f"{SYS_USER} USER: Hi ASSISTANT:"


def test_render_prompt_matches_training_prefix_for_vicuna_v1():
    r = render("vicuna_v1", conv("<image>\nWhat is it?", "A cat."), has_image=True)
    prompt = render_prompt("vicuna_v1", "What is it?", has_image=True)
    assert r.text.startswith(prompt) and r.text[len(prompt):] == " A cat.</s>"


def test_render_prompt_plain_and_llava_v0():
    assert render_prompt("plain", "Describe.", has_image=True) == "<image>\nDescribe.\n"
    assert render_prompt("plain", "", has_image=True) == "<image>"  # the stage-1 training prefix
    assert render_prompt("llava_v0", "What is it?", has_image=True) == (
        f"{SYS_HUMAN}###Human: <image>\nWhat is it?###Assistant:")
    with pytest.raises(ValueError):
        render_prompt("vicuna_v1", "<image>\nq", has_image=False)
