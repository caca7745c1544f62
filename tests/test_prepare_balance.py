"""Noun-phrase concept balancing (LLaVA-1.0's CC3M -> CC3M-595K), with an injected phrase extractor.

The test extractor reads a caption as comma-separated phrases ("dog, frisbee" -> ["dog", "frisbee"]),
so each case states its phrase sets directly; normalisation (case, whitespace) is balance's job.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence

import pytest

from llava_core.prepare.balance import (
    SPACY_INSTALL_HINT,
    BalanceResult,
    balance_by_noun_phrases,
    balance_records,
    record_caption,
    spacy_noun_phrases,
)


def comma_phrases(batch: Sequence[str]) -> list[list[str]]:
    return [[p for p in caption.split(",") if p.strip()] for caption in batch]


def balance(captions: list[str], **kw) -> BalanceResult:
    return balance_by_noun_phrases(captions, comma_phrases, progress=False, **kw)


def test_hand_computed_example() -> None:
    """min_count=3, max_per_phrase=3 on ten captions.

    Phrase -> captions (normalised, once per caption):
      dog     {0, 1, 2}     freq 3: kept, all taken  (caption 2 says "Dog" twice: still one)
      park    {1, 5, 6}     freq 3: kept, all taken
      frisbee {0, 2, 5, 6}  freq 4 > 3: kept, capped, 3 of 4 sampled -- all four are already
                            in via dog/park, so whichever 3 are drawn the pool is unchanged
      cat {3, 4}, sofa {4, 7}: freq 2 < 3, skipped;  bird {8}: freq 1, skipped;  caption 9 has none
    Pool = {0, 1, 2} | {1, 5, 6} | (3 of {0, 2, 5, 6}) = {0, 1, 2, 5, 6} for every seed.
    Had "dog" been counted twice in caption 2, it would have frequency 4 and be capped too.
    """
    captions = ["dog, frisbee", "dog, park", " Dog , frisbee, dog", "cat", "cat, sofa",
                "park, frisbee", "PARK,frisbee ", "sofa", "bird", ""]
    for seed in range(5):
        res = balance(captions, min_count=3, max_per_phrase=3, seed=seed)
        assert res.selected == [0, 1, 2, 5, 6]
        assert res.stats() == {"n_captions": 10, "n_phrases": 6, "n_phrases_kept": 3,
                               "n_phrases_capped": 1, "n_selected": 5}


def test_phrases_below_min_count_never_select_on_their_own() -> None:
    captions = ["rare"] * 2 + ["common"] * 3 + ["rare, common"] + ["unique"]
    assert balance(captions).selected == [0, 1, 2, 3, 4, 5]  # rare in 3 captions (0, 1, 5): kept
    captions[5] = "common"  # now rare is in 2
    res = balance(captions)
    assert res.selected == [2, 3, 4, 5]  # rare (freq 2) and unique (freq 1) select nothing
    assert res.n_phrases == 3 and res.n_phrases_kept == 1
    assert balance(captions, min_count=2).selected == [0, 1, 2, 3, 4, 5]
    assert balance(captions, min_count=1).selected == list(range(7))


def test_frequent_phrase_is_capped_at_100_of_its_captions() -> None:
    captions = ["kite"] * 150 + ["boat"] * 100 + ["tree"] * 101
    res = balance(captions)
    kite = [i for i in res.selected if i < 150]
    boat = [i for i in res.selected if 150 <= i < 250]
    tree = [i for i in res.selected if i >= 250]
    assert len(kite) == 100 and len(tree) == 100
    assert boat == list(range(150, 250))  # frequency exactly 100 is not capped
    assert res.n_phrases_capped == 2 and res.n_selected == 300
    assert len(balance(captions, max_per_phrase=10).selected) == 30


def test_rare_phrase_keeps_its_captions_and_common_phrase_samples_from_all() -> None:
    """Captions 0-2 hold "hat" (freq 3) and "cat"; 3-149 hold only "cat" (freq 150).

    The rare phrase brings 0-2 in whatever the draw. The common phrase samples 100 of all 150 of
    its captions, including 0-2 (union semantics), so the cat-only captions selected number
    100 - |sample & {0,1,2}|: between 97 and 100, depending on the seed. Topping up from the captions
    not yet pooled would always give 100; counting pooled captions against the cap always 97.
    """
    captions = ["hat, cat"] * 3 + ["cat"] * 147
    cat_only_counts = set()
    for seed in range(30):
        sel = set(balance(captions, seed=seed).selected)
        assert {0, 1, 2} <= sel
        cat_only = len(sel - {0, 1, 2})
        assert 97 <= cat_only <= 100
        cat_only_counts.add(cat_only)
    assert len(cat_only_counts) >= 2

    # without the rare phrase, captions 0-2 only get in when the cat sample happens to draw them
    plain = ["cat"] * 150
    assert any(not {0, 1, 2} <= set(balance(plain, seed=s).selected) for s in range(30))


def test_deterministic_per_seed_and_different_across_seeds() -> None:
    captions = [f"thing, colour {i % 7}" for i in range(400)] + [f"shape {i % 3}" for i in range(500)]
    a = balance(captions, seed=0)
    assert a.selected == balance(captions, seed=0).selected
    assert a.selected == sorted(a.selected)
    b = balance(captions, seed=1)
    assert a.selected != b.selected
    assert a.n_selected == b.n_selected


def test_repeated_phrase_in_one_caption_counts_once() -> None:
    captions = ["dog, dog, Dog", "dog , DOG"]  # 5 mentions, 2 captions: frequency 2 < 3
    res = balance(captions)
    assert res.selected == [] and res.n_phrases == 1 and res.n_phrases_kept == 0
    res = balance(captions + ["dog"])
    assert res.selected == [0, 1, 2]


def test_batching_gives_the_same_selection() -> None:
    captions = [f"a{i % 5}, b{i % 11}, c{i % 2}" for i in range(1000)]
    whole = balance(captions, seed=3)
    calls: list[int] = []

    def counting(batch: Sequence[str]) -> list[list[str]]:
        calls.append(len(batch))
        return comma_phrases(batch)

    batched = balance_by_noun_phrases(captions, counting, seed=3, batch_size=64, progress=False)
    assert batched.selected == whole.selected
    assert calls == [64] * 15 + [40]


def test_extractor_must_return_one_result_per_caption() -> None:
    with pytest.raises(ValueError, match="one phrase list per caption"):
        balance_by_noun_phrases(["a", "b", "c"], lambda b: [["a"]] * (len(b) - 1), progress=False)
    with pytest.raises(ValueError, match="more than"):
        balance_by_noun_phrases(["a", "b"], lambda b: [["a"]] * 3, progress=False, batch_size=2)


def test_balance_records_keeps_input_order_and_reads_both_formats() -> None:
    def llava(i: int, caption: str) -> dict:
        return {"id": str(i), "image": f"{i}.jpg",
                "conversations": [{"from": "human", "value": "<image>\nDescribe."},
                                  {"from": "gpt", "value": caption}]}

    records = [llava(0, "tram"), {"id": "1", "image": "1.jpg", "caption": "tram"}, llava(2, "ox"),
               {"id": "3", "caption": "tram", "conversations": [{"from": "gpt", "value": "ox"}]}]
    kept, stats = balance_records(records, comma_phrases, progress=False)
    assert [r["id"] for r in kept] == ["0", "1", "3"]  # "caption" wins over the gpt turn
    assert kept[0] is records[0]
    assert stats == {"n_captions": 4, "n_phrases": 2, "n_phrases_kept": 1, "n_phrases_capped": 0,
                     "n_selected": 3}
    with pytest.raises(ValueError, match="id='x'"):
        record_caption({"id": "x", "conversations": [{"from": "human", "value": "hi"}]})


def test_missing_spacy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spacy", None)  # makes `import spacy` raise ImportError
    with pytest.raises(RuntimeError) as err:
        spacy_noun_phrases()
    assert "pip install spacy && python -m spacy download en_core_web_sm" in str(err.value)
    assert SPACY_INSTALL_HINT in str(err.value)


def test_missing_spacy_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(name: str):
        raise OSError(f"[E050] Can't find model '{name}'.")

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=load))
    with pytest.raises(RuntimeError, match="en_core_web_sm.*python -m spacy download en_core_web_sm"):
        spacy_noun_phrases()


def test_spacy_extractor_uses_noun_chunks_with_unused_components_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in spaCy: checks the extractor's wiring (pipe arguments, noun_chunks) without the model."""
    seen: dict = {}

    class FakeNLP:
        pipe_names = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]

        def pipe(self, texts, **kw):
            seen.update(kw)
            for text in texts:
                chunks = [types.SimpleNamespace(text=w) for w in text.split() if w[0].isupper()]
                yield types.SimpleNamespace(noun_chunks=chunks)

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=lambda name: FakeNLP()))
    extract = spacy_noun_phrases(n_process=2)
    assert list(extract(["A Dog on Grass", "nothing here"])) == [["A", "Dog", "Grass"], []]
    assert seen["n_process"] == 2
    assert sorted(seen["disable"]) == ["lemmatizer", "ner"]
    res = balance_by_noun_phrases(["Dog"] * 3 + ["Cat"], extract, progress=False)
    assert res.selected == [0, 1, 2]
