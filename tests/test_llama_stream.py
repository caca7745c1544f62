"""Vicuna's token stream, exactly: the real LLaMA vocabulary in both tokenizer-folder forms.

The released LLaVA-1.5 checkpoints saw the stream of upstream's ``tokenizer_image_token`` with the
slow legacy Llama tokenizer (spec 2.3b). :func:`original_ids` and :func:`original_v1_labels`
re-derive that stream and its labels by upstream's own algorithm (split at ``<image>``, tokenise
each chunk with its BOS then drop it; labels by counting the tokens of each round and of its
instruction, minus 2), using a plain ``tokenizers`` legacy SentencePiece-BPE built from the real
vocabulary, not transformers and not this package. This package's ``encode`` (offset-based
labels, whatever the folder's ``legacy`` flag) must give exactly the same ids and labels.
A few streams are also spelled out by hand from the spec's measurements.
"""

from __future__ import annotations

import json

import pytest
from llama_vocab import SENTINEL, expand, original_ids, original_stream, raw_tokenizer, write_tokenizer_folder
from transformers import AutoTokenizer

from llava_core.cli import main
from llava_core.data.conversation import Rendered, render, render_prompt
from llava_core.data.formats import IMAGE_TOKEN
from llava_core.data.inspect import supervised_runs
from llava_core.data.tokenize import IGNORE_INDEX, encode, make_tokenizer_for_llava
from llava_core.evaluate.benchmarks import BENCHMARKS, get_benchmark
from llava_core.synthetic import generate_world

N_IMAGE = 576  # llama_vocab.expand's default
FORMS = ["legacy", "nonlegacy"]
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def conv(*values: str) -> list[dict]:
    return [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(values)]


RECORDS = {
    "multi_turn_image": (conv("<image>\nWhat is the man doing?", "He is ironing clothes on the back of a taxi.",
                              "Is this unusual?", "Yes, it is unusual: people iron indoors, not on a moving car."),
                         True),
    "image_after_question": (conv("What color is the car?\n<image>", "Red"), True),
    "image_inside_question": (conv("Look at <image> and count the birds.", "3"), True),
    "numeric_answers": (conv("<image>\nHow many dogs?", "2", "And cats?", "12"), True),
    "text_only_multi_turn": (conv("Write a haiku about café mornings ☕.", "Steam curls from the cup,\nquiet "
                                  "street, first light on tiles—\nthe day starts slowly.", "Translate 'hello' to "
                                  "Japanese.", "こんにちは (konnichiwa)."), False),
    "text_only_literal_image": (conv("In LLaVA data, what does <image> mark?", "Where the picture goes."), False),
    "answers_with_spaces": (conv("<image>\nList two things.", " a cat\n- a mat", "Again?", "\n1. yes"), True),
}


# --------------------------------------------------------------------------- the original algorithm
@pytest.fixture(scope="module")
def sp():
    """Legacy SentencePiece-BPE over the real vocabulary (what transformers 4.31's slow tokenizer did)."""
    return raw_tokenizer(legacy=True)


# --------------------------------------------------------------------------- this package
@pytest.fixture(scope="module", params=FORMS)
def folder(request, tmp_path_factory):
    return write_tokenizer_folder(tmp_path_factory.mktemp(request.param), legacy=request.param == "legacy")


@pytest.fixture(scope="module")
def tok(folder):
    return make_tokenizer_for_llava(AutoTokenizer.from_pretrained(folder))


def ours(template: str, turns: list[dict], has_image: bool, tok):
    enc = encode(render(template, turns, has_image=has_image), tok, max_length=100_000, num_image_tokens=N_IMAGE,
                 has_image=has_image)
    return enc.input_ids, enc.labels


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, seed=3, n_pretrain=40, n_finetune=120, n_eval=12)
    return root


def test_the_vocabulary_is_llamas(tok):
    assert tok("Hello world!")["input_ids"] == [1, 15043, 3186, 29991]
    assert tok.convert_tokens_to_ids(IMAGE_TOKEN) == 32000 and tok.pad_token == "<unk>"


def test_hand_derived_streams(tok):
    """Spec 2.3b, measured with the real vocabulary: the ``▁`` after the image, ``▁US`` after ``</s>``."""
    ids, labels = ours("vicuna_v1", conv("<image>\nWhat is it?", "A dog.", "Sure?", "Yes"), True, tok)
    image = [32000] * N_IMAGE
    head = tok(SYSTEM + " USER:", add_special_tokens=False)["input_ids"]
    assert ids[:1 + len(head)] == [1, *head] and head[-3:] == [3148, 1001, 29901]  # ▁US ER :
    rest = ids[1 + len(head):]
    assert rest[:1 + N_IMAGE + 3] == [29871, *image, 29871, 13, 5618]  # ▁ [image] ▁ <0x0A> What
    eos = ids.index(2)
    assert ids[eos:eos + 4] == [2, 3148, 1001, 29901]  # </s> ▁US ER :
    sup = [t for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert tok.convert_ids_to_tokens(sup) == ["▁A", "▁dog", ".", "</s>", "▁Yes", "</s>"]

    ids, labels = ours("plain", conv("<image>\nDescribe it.", "a dog"), True, tok)
    assert ids == [1, *image, 263, 11203, 13]  # ▁a ▁dog <0x0A>: "▁a", not "a"
    assert labels == [IGNORE_INDEX] * (1 + N_IMAGE) + [263, 11203, 13]


# plain is the stage-1 template: image-caption pairs only (render refuses text-only records).
CASES = [(t, n) for t in ("vicuna_v1", "plain", "llava_v0") for n in sorted(RECORDS) if t != "plain" or RECORDS[n][1]]


@pytest.mark.parametrize(("template", "name"), CASES)
def test_records_equal_the_original_stream(name, template, tok, sp):
    turns, has_image = RECORDS[name]
    if template == "plain":
        turns = turns[:2]
    ids, labels = ours(template, turns, has_image, tok)
    want_ids, want_labels = original_stream(template, turns, has_image, sp, 32000)
    assert tok.convert_ids_to_tokens(ids) == tok.convert_ids_to_tokens(want_ids)
    if template != "llava_v0":
        assert labels == want_labels
    else:  # our documented llava_v0 spans: each answer and the "###" that ends it
        runs = supervised_runs(ids, labels)
        assert [tok.decode(r).strip() for r in runs] == [(t["value"] + "\n###").strip() for t in turns[1::2]]


def test_supervised_tokens_are_each_answer_and_eos(tok):
    for name, (turns, has_image) in RECORDS.items():
        ids, labels = ours("vicuna_v1", turns, has_image, tok)
        runs = supervised_runs(ids, labels)
        assert [r[-1] for r in runs] == [2] * len(turns[1::2]), name
        assert [tok.decode(r[:-1]) for r in runs] == [t["value"] for t in turns[1::2]], name


def test_tiny_world_records_equal_the_original_stream(world, tok, sp):
    from llava_core.data.formats import read_llava_records

    checked = {"image": 0, "text": 0}
    for template, part in (("plain", "pretrain/blip_laion_cc_sbu_558k.json"), ("vicuna_v1", None)):
        path = world / part if part else next((world / "finetune").glob("*.json"))
        for rec in read_llava_records(path):
            has_image = "image" in rec
            ids, labels = ours(template, rec["conversations"], has_image, tok)
            assert (ids, labels) == original_stream(template, rec["conversations"], has_image, sp, 32000), rec["id"]
            checked["image" if has_image else "text"] += 1
    assert checked["image"] > 100 and checked["text"] >= 3


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_prompt_equals_the_original_stream(name, world, tok, sp):
    questions = get_benchmark(name).load_questions(world / "eval")
    assert questions
    for q in questions:
        has_image = q.image is not None
        prompt = render_prompt("vicuna_v1", q.text, has_image=has_image)
        enc = encode(Rendered(prompt, []), tok, max_length=10**9, num_image_tokens=N_IMAGE)
        want, _ = expand(original_ids(prompt, sp), [0] * len(original_ids(prompt, sp)), 32000)
        assert enc.input_ids == want, (name, q.question_id)
        if has_image:  # "USER: <image>\n..." -> ▁ [image] ▁ <0x0A>
            at = enc.input_ids.index(32000)
            assert enc.input_ids[at - 1] == 29871 and enc.input_ids[at + N_IMAGE:at + N_IMAGE + 2] == [29871, 13]


def test_without_the_legacy_rewrite_the_nonlegacy_folder_loses_pieces(tmp_path, sp):
    """The check has teeth: transformers 5 on a ``legacy: false`` folder, used as is, differs."""
    folder = write_tokenizer_folder(tmp_path / "nonlegacy", legacy=False)
    plain = AutoTokenizer.from_pretrained(folder)
    plain.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]}, replace_extra_special_tokens=False)
    text = render("vicuna_v1", conv("<image>\nWhat?", "a", "b?", "c"), has_image=True).text
    want = [32000 if t == SENTINEL else t for t in original_ids(text, sp)]
    got = plain(text)["input_ids"]
    assert got != want
    assert len(want) - len(got) == 2  # the ▁ after <image>, and ▁US ER -> USER after </s>


@pytest.mark.parametrize("template", ["vicuna_v1", "plain"])
def test_inspect_shows_the_original_stream(template, folder, tmp_path, capsys, sp):
    records = [{"id": k, "image": "x.jpg", "conversations": t[:2] if template == "plain" else t} if h else
               {"id": k, "conversations": t} for k, (t, h) in RECORDS.items() if h or template != "plain"]
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    assert main(["inspect", "--records", str(path), "--template", template, "--tokenizer", str(folder),
                 "--num-image-tokens", str(N_IMAGE)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for row, rec in zip(rows, records, strict=True):
        want_ids, want_labels = original_stream(template, rec["conversations"], "image" in rec, sp, 32000)
        assert (row["input_ids"], row["labels"]) == (want_ids, want_labels), rec["id"]
        if "image" in rec:  # the image run, then the word-start piece of the next chunk
            after = row["tokens"][row["tokens"].index(f"{IMAGE_TOKEN}x{N_IMAGE}") + 1:]
            if template == "vicuna_v1":
                assert after[:2] == ["▁", "<0x0A>"]
            else:
                assert after[0].startswith("▁") and after[-1] == "<0x0A>"
        if template == "vicuna_v1":  # decoded runs (Llama's decoder drops a run's leading space)
            assert row["supervised"] == [t["value"] + "</s>" for t in rec["conversations"][1::2]]
