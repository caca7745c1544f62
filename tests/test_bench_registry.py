import math
from pathlib import Path

import pytest

from llava_core.evaluate.benchmarks import BENCHMARKS, Benchmark, EvalQuestion, get_benchmark
from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import FormatError

NAMES = ["vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn", "seed_bench",
         "llava_bench", "mm_vet"]


def test_registry_has_the_twelve_benchmarks_in_paper_order():
    assert list(BENCHMARKS) == NAMES
    for name, bench in BENCHMARKS.items():
        assert isinstance(bench, Benchmark) and bench.name == name and bench.title and bench.paper_column
        assert get_benchmark(name) is bench


def test_unknown_name_lists_allowed_ones():
    with pytest.raises(ValueError, match="unknown benchmark 'sqa'.*allowed: vqav2, gqa, vizwiz"):
        get_benchmark("sqa")


def test_paper_numbers():
    assert set(PAPER_NUMBERS) == {"llava-v1.5-7b", "llava-v1.5-13b", "llava-v1.5-7b-lora", "llava-v1.5-13b-lora"}
    for row in PAPER_NUMBERS.values():
        assert list(row) == NAMES and all(isinstance(v, float) and not math.isnan(v) for v in row.values())
    assert PAPER_NUMBERS["llava-v1.5-13b"]["mme"] == 1531.3
    assert PAPER_NUMBERS["llava-v1.5-7b"]["pope"] == 85.9
    assert PAPER_NUMBERS["llava-v1.5-13b-lora"]["vizwiz"] == 58.9
    assert PAPER_NUMBERS["llava-v1.5-7b-lora"]["seed_bench"] == 60.1


@pytest.mark.parametrize("name", NAMES)
def test_missing_question_file_names_the_path(tmp_path: Path, name):
    bench = get_benchmark(name)
    with pytest.raises(FormatError, match="not found") as err:
        bench.load_questions(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_eval_question_defaults():
    q = EvalQuestion(1, "t", None, 128)
    assert q.extra == {}
