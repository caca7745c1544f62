"""LLaVA-1.0's noun-phrase concept balancing: how CC3M-595K was cut from the 3.3M CC3M captions.

The recipe (LLaVA paper, Sec. 4.1 / App.): extract noun phrases with spaCy from every caption and
count, for each unique phrase, the captions that contain it. Phrases seen in fewer than 3 captions
are skipped. Going from the least frequent phrase upwards, the captions of each phrase are added
to a pool (a set); a phrase with more than 100 captions contributes a random 100 of *all* its
captions, whether or not some of them are already pooled (union semantics). Rare concepts thus
keep every caption while frequent ones are capped, flattening the concept distribution.

Under union semantics the pool is the union of the per-phrase picks, so the processing order only
decides which draw of the shared ``random.Random(seed)`` each capped phrase gets; the order is
fixed (frequency, then phrase text) so a seed reproduces the selection exactly.

Phrase extraction is injected (:data:`NounPhraseExtractor`), so the selection logic is tested
without spaCy; :func:`spacy_noun_phrases` builds the real extractor.
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

NounPhraseExtractor = Callable[[Sequence[str]], Iterable[Iterable[str]]]
"""Maps a batch of captions to an iterable with one list of noun phrases per caption, in order."""

SPACY_INSTALL_HINT = "pip install spacy && python -m spacy download en_core_web_sm"
# noun_chunks needs the tagger and the dependency parse; these components only cost time.
_SPACY_UNUSED = ("ner", "lemmatizer", "textcat", "textcat_multilabel", "entity_ruler", "senter")
# 32-bit unsigned indices: 4 bytes per (phrase, caption) pair instead of a Python int each.
_INDEX_TYPECODE = "I" if array("I").itemsize >= 4 else "L"


@dataclass
class BalanceResult:
    """The balanced subset (indices into the captions) and counts that describe how it was made."""

    selected: list[int] = field(repr=False)  # ascending indices into the input captions
    n_captions: int
    n_phrases: int  # unique normalised noun phrases
    n_phrases_kept: int  # frequency >= min_count
    n_phrases_capped: int  # kept phrases with frequency > max_per_phrase, sampled down
    n_selected: int

    def stats(self) -> dict[str, int]:
        """The counts without the index list, e.g. for a manifest."""
        return {k: v for k, v in asdict(self).items() if k != "selected"}


def normalize_phrase(phrase: str) -> str:
    """The key a phrase is counted under: lowercased, surrounding whitespace stripped."""
    return phrase.strip().lower()


def _chunks(captions: Sequence[str], batch_size: int | None) -> Iterator[Sequence[str]]:
    if batch_size is None:
        yield captions
        return
    for start in range(0, len(captions), batch_size):
        yield captions[start:start + batch_size]


def _index_phrases(captions: Sequence[str], extract: NounPhraseExtractor, batch_size: int | None,
                   progress: bool) -> dict[str, int | array]:
    """Map each normalised phrase to the (ascending) indices of the captions that contain it.

    Most phrases occur in a single caption, so a lone index is stored as a plain int and only
    promoted to an ``array`` on its second caption: that saves an array object per singleton.
    """
    postings: dict[str, int | array] = {}
    i = 0
    with tqdm(total=len(captions), desc="noun phrases", unit="caption", disable=not progress) as bar:
        for chunk in _chunks(captions, batch_size):
            start = i
            for phrases in extract(chunk):
                if i - start >= len(chunk):
                    raise ValueError(f"the noun-phrase extractor returned more than {len(chunk)} results "
                                     f"for a batch of {len(chunk)} captions")
                # dict.fromkeys: a phrase repeated within one caption counts once for it
                for key in dict.fromkeys(normalize_phrase(p) for p in phrases):
                    if not key:
                        continue
                    seen = postings.get(key)
                    if seen is None:
                        postings[key] = i
                    elif isinstance(seen, int):
                        postings[key] = array(_INDEX_TYPECODE, (seen, i))
                    else:
                        seen.append(i)
                i += 1
                bar.update()
            if i - start != len(chunk):
                raise ValueError(f"the noun-phrase extractor returned {i - start} results for a batch of "
                                 f"{len(chunk)} captions; it must return one phrase list per caption")
    return postings


def balance_by_noun_phrases(captions: Sequence[str], extract: NounPhraseExtractor, *, min_count: int = 3,
                            max_per_phrase: int = 100, seed: int = 0, batch_size: int | None = None,
                            progress: bool = True) -> BalanceResult:
    """Select a concept-balanced subset of ``captions`` by LLaVA-1.0's noun-phrase recipe.

    ``batch_size=None`` calls ``extract`` once on all captions and consumes its output lazily,
    which suits spaCy's ``nlp.pipe`` (with ``n_process > 1`` it starts its workers once per call);
    an int calls it on slices of that many captions, bounding memory for list-returning extractors.
    """
    if min_count < 1 or max_per_phrase < 1:
        raise ValueError(f"min_count and max_per_phrase must be >= 1, got {min_count} and {max_per_phrase}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")

    postings = _index_phrases(captions, extract, batch_size, progress)
    n_phrases = len(postings)
    kept = [(1 if isinstance(ix, int) else len(ix), phrase) for phrase, ix in postings.items()]
    kept = [fp for fp in kept if fp[0] >= min_count]
    kept.sort()  # least frequent first; ties by phrase text, so the rng draws are reproducible

    rng = random.Random(seed)
    in_pool = bytearray(len(captions))  # one byte per caption, not a set of millions of ints
    n_capped = 0
    for freq, phrase in kept:
        ix = postings[phrase]
        if isinstance(ix, int):  # only reachable with min_count == 1
            in_pool[ix] = 1
            continue
        if freq > max_per_phrase:
            n_capped += 1
            # sample from all the phrase's captions, pooled or not (union semantics)
            for pos in rng.sample(range(freq), max_per_phrase):
                in_pool[ix[pos]] = 1
        else:
            for j in ix:
                in_pool[j] = 1

    selected = list(itertools.compress(range(len(captions)), in_pool))
    return BalanceResult(selected=selected, n_captions=len(captions), n_phrases=n_phrases,
                         n_phrases_kept=len(kept), n_phrases_capped=n_capped, n_selected=len(selected))


def spacy_noun_phrases(model: str = "en_core_web_sm", n_process: int = 1,
                       batch_size: int = 1000) -> NounPhraseExtractor:
    """A :data:`NounPhraseExtractor` using spaCy's ``doc.noun_chunks`` (the paper's extractor).

    spaCy is imported here, not at module import, so the rest of the package does not need it.
    """
    try:
        import spacy
    except ImportError as e:
        raise RuntimeError(f"noun-phrase balancing needs spaCy and its English model: {SPACY_INSTALL_HINT}") from e
    try:
        nlp = spacy.load(model)
    except OSError as e:  # spaCy's E050: the model package is not installed
        hint = SPACY_INSTALL_HINT if model == "en_core_web_sm" else f"python -m spacy download {model}"
        raise RuntimeError(f"spaCy model {model!r} is not installed: {hint}") from e
    disable = [name for name in _SPACY_UNUSED if name in nlp.pipe_names]

    def extract(captions: Sequence[str]) -> Iterator[list[str]]:
        for doc in nlp.pipe(captions, batch_size=batch_size, n_process=n_process, disable=disable):
            yield [chunk.text for chunk in doc.noun_chunks]

    return extract


def record_caption(rec: dict) -> str:
    """A record's caption: its ``caption`` key (raw CC3M) or else its first gpt turn (LLaVA format)."""
    caption = rec.get("caption")
    if isinstance(caption, str):
        return caption
    for turn in rec.get("conversations") or ():
        if isinstance(turn, dict) and turn.get("from") == "gpt" and isinstance(turn.get("value"), str):
            return turn["value"]
    raise ValueError(f"record id={rec.get('id')!r} has neither a 'caption' string nor a gpt turn")


def balance_records(records: list[dict], extract: NounPhraseExtractor,
                    **kw: Any) -> tuple[list[dict], dict[str, int]]:
    """Balance caption records (see :func:`balance_by_noun_phrases`); keep input order.

    Returns the kept records and the stats of the selection. Keyword arguments go to
    :func:`balance_by_noun_phrases`.
    """
    captions = [record_caption(rec) for rec in records]
    result = balance_by_noun_phrases(captions, extract, **kw)
    return [records[i] for i in result.selected], result.stats()
