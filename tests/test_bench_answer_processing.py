import pytest

from llava_core.evaluate.benchmarks.answer_processing import evalai_process, process_punctuation, vqa_accuracy


@pytest.mark.parametrize("raw,processed", [
    ("Two dogs.", "2 dogs"),
    ("3.5", "3.5"),
    ("The cat's toy", "cat 's toy"),
    ("dont know", "don't know"),
    ("Im here", "im here"),              # capitalised table keys never match
    ("somebody'd", "somebodyd"),         # upstream table entry
    ("yes, sir", "yes sir"),
    ("1,000", "1000"),
    ("black-and-white", "black and white"),  # no space next to '-': replaced by a space
    ("black - white", "black white"),        # ' -' present: deleted
    ("a/b", "b"),                            # '/' -> ' ', then the article 'a' goes
    ("e.g", "eg"),
    ("none", "0"),
    ("  Unanswerable\n", "unanswerable"),
    ("What?", "what"),
])
def test_evalai_processor(raw, processed):
    assert evalai_process(raw) == processed


def test_period_count_quirk():
    # re.UNICODE (32) is passed as `count`: only the first 32 periods are removed
    assert process_punctuation("x." * 40) == "x" * 33 + ".x" * 7 + "."


def test_punctuation_decision_uses_the_original_text():
    # '(' is next to a space somewhere, so every '(' is deleted; ')' is not, so it becomes a space
    assert process_punctuation("f (x)y") == "f x y"


@pytest.mark.parametrize("k,acc", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_leave_one_out_accuracy(k, acc):
    gts = ["Red."] * k + ["blue"] * (10 - k)
    assert vqa_accuracy("red", gts) == pytest.approx(acc)
