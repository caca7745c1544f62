"""Label masks from character spans, checked on two tokenizer families built offline."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from llava_core.data.conversation import render
from llava_core.data.tokenize import IGNORE_INDEX, encode, make_tokenizer_for_llava

SPECIALS = ["<unk>", "<s>", "</s>"]
UNICODE = "éüßçñøåæ日本語中文한국어😀€°µ→"
CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: ASSISTANT: Human: Assistant: ###",
    "What is in the image? The cat sits on a red mat near 2 dogs and 13 birds. Yes, no, maybe!",
    "Describe the photo in detail.\nAnswer the question using a single word or phrase.",
    string.ascii_letters + string.digits + string.punctuation + " \n\t" + UNICODE,
] * 4


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    return make_tokenizer_for_llava(fast)


def byte_level_bpe() -> PreTrainedTokenizerFast:
    """GPT-2 style: ByteLevel pre-tokenizer/decoder, the space is glued to the next word (``ĠYes``)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=500, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return _wrap(tok)


def sentencepiece_bpe() -> PreTrainedTokenizerFast:
    """Llama style: ``▁`` metaspace, byte fallback, digits split off (`` 2`` -> ``▁``, ``2``)."""
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    pre = pre_tokenizers.Sequence([metaspace, pre_tokenizers.Digits(individual_digits=True)])
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS))
    spec = json.loads(trained.to_str())["model"]
    vocab = dict(spec["vocab"])
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in spec["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(SPECIALS)
    return _wrap(tok)


TOKENIZERS = {"byte_level_bpe": byte_level_bpe(), "sentencepiece_bpe": sentencepiece_bpe()}


def decode(tok: PreTrainedTokenizerFast, ids: list[int]) -> str:
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def supervised_runs(labels: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    prev = False
    for label in labels:
        sup = label != IGNORE_INDEX
        if sup and not prev:
            runs.append([])
        if sup:
            runs[-1].append(label)
        prev = sup
    return runs


def conv(*values: str) -> list[dict]:
    return [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(values)]


# --- hypothesis: random multi-turn conversations --------------------------------------------------

PUNCT = string.punctuation.replace("<", "").replace(">", "")  # no accidental "<s>" / "</s>"
ALPHABET = string.ascii_letters + string.digits + PUNCT + UNICODE
ANY_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="<>▁")  # unseen: byte fallback
word = st.one_of(st.text(alphabet=ALPHABET, min_size=1, max_size=8),
                 st.text(ANY_CHAR, min_size=1, max_size=4), st.integers(-999, 10**6).map(str))
sep = st.sampled_from([" ", " ", " ", "\n", "  ", ", "])


@st.composite
def utterance(draw) -> str:
    words = draw(st.lists(word, min_size=1, max_size=8))
    out = words[0]
    for w in words[1:]:
        out += draw(sep) + w
    return draw(st.sampled_from(["", "", " ", "\n"])) + out + draw(st.sampled_from(["", "", " ", "\n"]))


@st.composite
def conversation(draw) -> tuple[list[dict], bool]:
    rounds = draw(st.integers(1, 4))
    values = [draw(utterance()) for _ in range(2 * rounds)]
    has_image = draw(st.booleans())
    if has_image:
        values[0] = draw(st.sampled_from(["<image>\n{}", "{}\n<image>", "<image>{}"])).format(values[0])
    return conv(*values), has_image


def check_common(tok, enc, has_image: bool, k: int) -> None:
    image_id = tok.convert_tokens_to_ids("<image>")
    assert enc.input_ids.count(image_id) == (k if has_image else 0)
    assert not enc.truncated
    assert enc.input_ids[0] == tok.bos_token_id and enc.labels[0] == IGNORE_INDEX
    for tid, label in zip(enc.input_ids, enc.labels, strict=True):
        assert label in (IGNORE_INDEX, tid)
        if tid in (image_id, tok.bos_token_id):
            assert label == IGNORE_INDEX
    if has_image:  # the image block is contiguous
        first = enc.input_ids.index(image_id)
        assert enc.input_ids[first:first + k] == [image_id] * k


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=conversation(), k=st.integers(1, 7))
def test_vicuna_v1_supervises_exactly_answers_and_eos(name, sample, k):
    tok = TOKENIZERS[name]
    turns, has_image = sample
    enc = encode(render("vicuna_v1", turns, has_image=has_image), tok, max_length=100_000, num_image_tokens=k)
    check_common(tok, enc, has_image, k)
    answers = [t["value"] for t in turns[1::2]]
    runs = supervised_runs(enc.labels)
    assert [decode(tok, r).strip() for r in runs] == [(a + "</s>").strip() for a in answers]
    assert all(r[-1] == tok.eos_token_id for r in runs)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(caption=utterance(), question=utterance(), k=st.integers(1, 7))
def test_plain_supervises_exactly_caption_and_newline(name, caption, question, k):
    tok = TOKENIZERS[name]
    enc = encode(render("plain", conv("<image>\n" + question, caption), has_image=True), tok,
                 max_length=100_000, num_image_tokens=k)
    check_common(tok, enc, True, k)
    assert enc.input_ids[1:1 + k] == [tok.convert_tokens_to_ids("<image>")] * k
    runs = supervised_runs(enc.labels)
    assert len(runs) == 1 and decode(tok, runs[0]).strip() == (caption + "\n").strip()
    assert enc.labels[1 + k:] == enc.input_ids[1 + k:]  # everything after the image


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=conversation())
def test_llava_v0_supervises_answers_and_stop(name, sample):
    tok = TOKENIZERS[name]
    turns, has_image = sample
    enc = encode(render("llava_v0", turns, has_image=has_image), tok, max_length=100_000, num_image_tokens=3)
    runs = supervised_runs(enc.labels)
    assert [decode(tok, r).strip() for r in runs] == [(t["value"] + "\n###").strip() for t in turns[1::2]]


# --- targeted cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_space_before_answer_is_supervised(name):
    tok = TOKENIZERS[name]
    enc = encode(render("vicuna_v1", conv("<image>\nHow many?", "2"), has_image=True), tok,
                 max_length=4096, num_image_tokens=4)
    pairs = zip(enc.input_ids, enc.labels, strict=True)
    sup = [tok.convert_ids_to_tokens(i) for i, label in pairs if label != IGNORE_INDEX]
    # Llama-style tokenizers write " 2" as a lone "▁" then "2": upstream supervises the "▁" too.
    assert sup == (["▁", "2", "</s>"] if name == "sentencepiece_bpe" else ["Ġ2", "</s>"])


def long_conversation(n_rounds: int = 12) -> list[dict]:
    values = []
    for i in range(n_rounds):
        values += [f"Question number {i}: what is in the picture?",
                   f"The answer number {i} is a cat on a mat."]
    values[0] = "<image>\n" + values[0]
    return conv(*values)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@pytest.mark.parametrize("mode", ["text", "expanded"])
def test_truncation_keeps_image_block_and_remaining_supervision(name, mode):
    tok = TOKENIZERS[name]
    k = 50
    rendered = render("vicuna_v1", long_conversation(), has_image=True)
    full = encode(rendered, tok, max_length=100_000, num_image_tokens=k)
    assert not full.truncated and full.num_text_tokens == len(full.input_ids) - (k - 1)
    runs = supervised_runs(full.labels)
    assert len(runs) == 12
    # cut in the middle of the answers
    max_length = len(full.input_ids) // 2
    cut = encode(rendered, tok, max_length=max_length, num_image_tokens=k, truncation=mode)
    # text: the released checkpoints' rule, max_length text tokens with the image as one token,
    # so the expanded sequence is k - 1 longer; expanded: the whole sequence is cut to max_length.
    length = max_length + k - 1 if mode == "text" else max_length
    assert cut.truncated and len(cut.input_ids) == len(cut.labels) == length
    assert cut.input_ids == full.input_ids[:length] and cut.labels == full.labels[:length]
    assert cut.input_ids.count(tok.convert_tokens_to_ids("<image>")) == k
    assert 0 < cut.num_supervised < full.num_supervised


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@pytest.mark.parametrize("mode", ["text", "expanded"])
def test_truncation_before_any_answer_is_flagged_not_dropped(name, mode):
    tok = TOKENIZERS[name]
    k = 50
    rendered = render("vicuna_v1", long_conversation(), has_image=True)
    full = encode(rendered, tok, max_length=100_000, num_image_tokens=k)
    image_end = len(full.input_ids) - full.input_ids[::-1].index(tok.convert_tokens_to_ids("<image>"))
    max_length = image_end + 1 - (k - 1 if mode == "text" else 0)
    cut = encode(rendered, tok, max_length=max_length, num_image_tokens=k, truncation=mode)
    assert cut.truncated and cut.num_supervised == 0 and len(cut.input_ids) == image_end + 1


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_image_block_that_does_not_fit_raises(name):
    tok = TOKENIZERS[name]
    rendered = render("vicuna_v1", long_conversation(2), has_image=True)
    full = encode(rendered, tok, max_length=100_000, num_image_tokens=576)
    image_at = full.input_ids.index(tok.convert_tokens_to_ids("<image>"))
    # expanded: the 576 image positions cannot fit in 60; text: fits, the image is one token.
    with pytest.raises(ValueError, match="image block"):
        encode(rendered, tok, max_length=60, num_image_tokens=576, truncation="expanded")
    assert encode(rendered, tok, max_length=60, num_image_tokens=576).truncated
    # text: a cut before the image token itself would leave features with no place to go.
    with pytest.raises(ValueError, match="image block"):
        encode(rendered, tok, max_length=image_at, num_image_tokens=576)


def test_unknown_truncation_mode_is_rejected():
    tok = TOKENIZERS["byte_level_bpe"]
    with pytest.raises(ValueError, match="truncation"):
        encode(render("vicuna_v1", conv("Hi", "Hello"), has_image=False), tok, max_length=8, num_image_tokens=1,
               truncation="middle")


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_text_only_record_keeps_literal_image_as_text(name):
    tok = TOKENIZERS[name]
    turns = conv("What does the tag <image> do in HTML?", "There is no such tag; <img> is.")
    enc = encode(render("vicuna_v1", turns, has_image=False), tok, max_length=4096, num_image_tokens=576,
                 has_image=False)
    image_id = tok.convert_tokens_to_ids("<image>")
    assert image_id not in enc.input_ids and len(enc.input_ids) < 200
    assert "the tag <image> do" in decode(tok, enc.input_ids)
    assert [decode(tok, r).strip() for r in supervised_runs(enc.labels)] == ["There is no such tag; <img> is.</s>"]


def test_text_only_ignores_num_image_tokens():
    tok = TOKENIZERS["byte_level_bpe"]
    rendered = render("vicuna_v1", conv("Hi", "Hello"), has_image=False)
    assert encode(rendered, tok, max_length=512, num_image_tokens=0) == encode(rendered, tok, max_length=512,
                                                                               num_image_tokens=576)


def test_make_tokenizer_for_llava_is_idempotent_and_sets_pad():
    tok = TOKENIZERS["sentencepiece_bpe"]
    n = len(tok)
    image_id = tok.convert_tokens_to_ids("<image>")
    assert make_tokenizer_for_llava(tok) is tok and len(tok) == n
    assert tok.convert_tokens_to_ids("<image>") == image_id != tok.unk_token_id
    assert tok.pad_token == "<unk>"
    assert "<image>" in tok.all_special_tokens
    assert tok.decode([image_id, tok.eos_token_id], skip_special_tokens=True) == ""


def test_pad_added_when_no_unk():
    tok = Tokenizer(models.WordLevel({"<s>": 0, "</s>": 1, "a": 2}, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = make_tokenizer_for_llava(PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                                            eos_token="</s>"))
    assert fast.pad_token == "<pad>" and fast.pad_token_id is not None
    assert fast.convert_tokens_to_ids("<image>") not in (None, fast.pad_token_id)


def test_tokenizer_without_image_token_is_rejected():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    with pytest.raises(ValueError, match="make_tokenizer_for_llava"):
        encode(render("vicuna_v1", conv("<image>\nq", "a"), has_image=True), fast, max_length=512,
               num_image_tokens=4)
