"""The EvalAI answer normalisation (``EvalAIAnswerProcessor`` in ``llava/eval/m4c_evaluator.py``,
itself from MMF/EvalAI) and the VQA soft accuracy used by TextVQA.

Behaviour is kept identical to upstream, quirks included:

* commas and ``?`` are deleted before the punctuation step, so its digit-comma-digit test never
  fires inside :func:`evalai_process`;
* whether a punctuation mark is deleted or replaced by a space depends on the text *before* any
  replacement (``p + " "`` or ``" " + p`` anywhere in it);
* the period regex ``(?!<=\\d)(\\.)(?!\\d)`` was meant as "not between digits" but only checks the
  next character, and ``re.UNICODE`` (= 32) is passed as ``count``: at most 32 periods go;
* the contraction table's capitalised keys (``Im``, ``Ive``, ...) never match lowercased words, and
  ``somebody'd`` maps to ``somebodyd``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from llava_core.io import FormatError, read_json

_CONTRACTION_PAIRS = """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd
itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't
mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've
neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll
someones=someone's somethingd=something'd somethingd've=something'd've
something'dve=something'd've somethingll=something'll thats=that's thered=there'd
thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd
theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas
wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll
whatre=what're whats=what's whatve=what've whens=when's whered=where'd wheres=where's
whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
"""
CONTRACTIONS: dict[str, str] = dict(pair.split("=", 1) for pair in _CONTRACTION_PAIRS.split())
NUMBER_WORDS: dict[str, str] = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
               ",", "?", "!")
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # upstream typo, kept
_PERIOD_STRIP_COUNT = int(re.UNICODE)  # upstream passes re.UNICODE where `count` goes
_DIGIT_COMMA = re.compile(r"(?<=\d)(\,)+(?=\d)")


def process_punctuation(text: str) -> str:
    """Delete or space out punctuation, then strip periods not followed by a digit (upstream rules)."""
    out = text
    digit_comma = _DIGIT_COMMA.search(text) is not None
    for p in PUNCTUATION:
        if p + " " in text or " " + p in text or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """Number words to digits, drop articles, expand the contraction table, join with spaces."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def evalai_process(answer: str) -> str:
    """``EvalAIAnswerProcessor()(answer)``."""
    answer = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def vqa_accuracy(pred: str, gt_answers: Sequence[str],
                 processor: Callable[[str], str] = evalai_process) -> float:
    """Soft VQA accuracy in [0, 1] (``TextVQAAccuracyEvaluator``): the mean over the leave-one-out
    subsets of the ground-truth answers of ``min(1, #matches among the others / 3)``; 0 if the
    processed prediction matches no processed ground-truth answer."""
    gts = [processor(a) for a in gt_answers]
    p = processor(pred)
    if not gts or p not in gts:
        return 0.0
    matches = gts.count(p)
    # leaving out a matching answer leaves matches-1 others; leaving out a non-matching one, matches
    total = sum(min(1.0, (matches - (g == p)) / 3) for g in gts)
    return total / len(gts)


def local_accuracy(path: Path, pairs, key: str) -> float:
    """Mean VQA accuracy of (question, answer) ``pairs`` against a VQA-format annotation file,
    matched on ``key`` (``question_id``, or ``image`` for VizWiz)."""
    data = read_json(path)
    rows = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise FormatError(path, None, "expected {'annotations': [...]} or a list of annotations")
    truth = {}
    for i, row in enumerate(rows):
        if key not in row or not isinstance(row.get("answers"), list):
            raise FormatError(path, None, f"annotation {i}: needs {key!r} and a list of 'answers'")
        truth[str(row[key])] = [a["answer"] if isinstance(a, dict) else str(a) for a in row["answers"]]
    total = n = 0
    for q, a in pairs:
        gts = truth.get(str(q[key]))
        if gts is None:
            raise FormatError(path, None, f"no annotation for {key}={q[key]!r}")
        total += vqa_accuracy(a["text"], gts)
        n += 1
    return total / n if n else math.nan
