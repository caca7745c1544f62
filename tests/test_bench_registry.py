import math
from pathlib import Path

import pytest

from llava_core.evalkit import ANSWER_FORMATS, KITS, QUESTION_FORMATS, Kit, KitFile, kit
from llava_core.evaluate.benchmarks import BENCHMARKS, get_benchmark
from llava_core.evaluate.benchmarks.base import Benchmark, EvalQuestion, Score
from llava_core.evaluate.paper import PAPER_NUMBERS
from llava_core.io import FormatError

NAMES = ["vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn", "seed_bench",
         "llava_bench", "mm_vet"]


def test_registry_has_the_twelve_benchmarks_in_paper_order():
    assert list(BENCHMARKS) == list(KITS) == NAMES
    for name, bench in BENCHMARKS.items():
        assert isinstance(bench, Benchmark) and bench.name == name and bench.title and bench.paper_column
        assert get_benchmark(name) is bench
        # The benchmark's code inherits its kit: every declaration is the kit's.
        declared = kit(name)
        assert type(declared) is not type(bench) and isinstance(bench, type(declared))
        assert not isinstance(declared, Benchmark)
        assert {k: getattr(bench, k) for k in vars(Kit) if not k.startswith("_") and not callable(getattr(Kit, k))} \
            == {k: getattr(declared, k) for k in vars(Kit) if not k.startswith("_") and not callable(getattr(Kit, k))}


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


# ----------------------------------------------------------------------------------------------- declarations

JUDGED = {"llava_bench", "mm_vet"}
#: the highest score of each benchmark's reported unit (MME: perception, 10 subtasks x 200)
TOP_SCORE = {"mme": 2000.0}


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_declares_folder_files_answer_format_judging_and_chance(name):
    bench = get_benchmark(name)
    assert bench.folder and not Path(bench.folder).is_absolute() and "/" not in bench.folder
    assert bench.files and "questions" in bench.files and bench.question_format in QUESTION_FORMATS
    for role, declared in bench.files.items():
        assert isinstance(declared, KitFile) and declared.path and declared.what, role
        assert not Path(declared.path).is_absolute() and ".." not in Path(declared.path).parts, role
    assert bench.answer_format in ANSWER_FORMATS
    assert isinstance(bench.judged, bool) and bench.judged == (name in JUDGED)
    assert not bench.judged or bench.answer_format == "long"
    assert isinstance(bench.chance, float) and 0.0 <= bench.chance < TOP_SCORE.get(name, 100.0)
    if bench.answer_format in ("letter", "yes_no"):  # a closed answer set: some answers are right by chance
        assert bench.chance > 0
    else:
        assert bench.chance == 0.0


def test_chance_levels():
    assert get_benchmark("pope").chance == pytest.approx(66.67, abs=0.01)  # F1 of always "yes" on 50% yes
    assert get_benchmark("seed_bench").chance == 25.0  # 4 options
    assert get_benchmark("mme").chance == 750.0  # (50 + 25) per subtask, 10 subtasks
    assert get_benchmark("scienceqa").chance == pytest.approx(40.08)  # the ScienceQA paper's random chance, IMG
    assert len({b.folder for b in BENCHMARKS.values()}) == len(BENCHMARKS)


@pytest.mark.parametrize("name", NAMES)
def test_missing_declared_file_error_names_it_and_gives_the_hint(tmp_path, name):
    bench = get_benchmark(name)
    role = "questions"
    with pytest.raises(FormatError) as err:
        bench.load_questions(tmp_path)
    assert err.value.path == str(bench.path(tmp_path, role))
    assert err.value.message == f"{bench.describe(role)} not found" and err.value.hint == bench.files[role].hint


def test_score_to_dict_is_the_scores_json_shape(tmp_path):
    s = Score(50, {"accuracy": 50}, {"total": 2})
    assert s.to_dict() == {"score": 50.0, "metrics": {"accuracy": 50.0}, "breakdown": {"total": 2}}
    assert all(type(v) is float for v in (s.score, *s.metrics.values()))
    up = Score(math.nan, {}, {}, str(tmp_path / "u.json"))
    assert up.upload == tmp_path / "u.json" and up.to_dict()["upload"] == str(tmp_path / "u.json")
    assert list(up.to_dict()) == ["score", "metrics", "breakdown", "upload"]
