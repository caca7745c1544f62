"""evaluation.dtype: validated, loads the model in it, casts images to it, is recorded and reruns evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from llava_core.config.compose import ConfigError, load_experiment
from llava_core.evaluate.generate import answer_questions, generate_answers, partial_path
from llava_core.evaluate.run import _answer, load_for_eval
from llava_core.evaluate.tiny_llava import build_tiny_llava, make_questions
from llava_core.plan.build import plan

KW = dict(template="vicuna_v1", aspect="pad", max_new_tokens=4, model_id="tiny-test", progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-llava")
    build_tiny_llava(d / "parts", save_to=d / "model")
    return d / "model", make_questions(d / "images", 6)


def test_presets_evaluate_as_the_paper_and_tiny_in_exact_fp32():
    for name in ("llava-v1.5-7b", "llava-v1.5-13b-lora"):
        ev = load_experiment(name).evaluation
        assert (ev.dtype, ev.batch_size) == ("fp16", 1)  # load_pretrained_model + model_vqa_loader.py
    ev = load_experiment("tiny").evaluation
    assert ev.dtype == "fp32" and ev.batch_size > 1  # batching is exact only in fp32
    assert load_experiment("tiny", ["evaluation.dtype=bf16"]).evaluation.dtype == "bf16"


@pytest.mark.parametrize(("override", "words"), [("evaluation.dtype=fp8", ["evaluation.dtype", "fp16, bf16, fp32"]),
                                                 ("evaluation.dtype=auto", ["evaluation.dtype", "fp16"]),
                                                 ("evaluation.batch_size=0", ["evaluation.batch_size", ">= 1"])])
def test_bad_values_are_rejected_with_the_allowed_ones(override, words):
    with pytest.raises(ConfigError) as e:
        load_experiment("tiny", [override])
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_changed_dtype_reruns_only_evaluation():
    base, bf16 = plan("tiny")["stages"], plan("tiny", ["evaluation.dtype=bf16"])["stages"]
    changed = sorted(s for s in base if base[s]["config_digest"] != bf16[s]["config_digest"])
    assert changed == sorted(s for s in base if s.startswith("eval/")) and changed
    # sharded generation jobs too
    assert all(base[s]["generation_digest"] != bf16[s]["generation_digest"] for s in changed)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_load_for_eval_loads_every_weight_in_the_dtype(tiny, dtype):
    model_dir, _ = tiny
    parts = load_for_eval(model_dir, dtype)
    want = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    assert {p.dtype for p in parts.model.parameters()} == {want}


def test_images_reach_the_model_in_its_dtype(tiny):
    model_dir, questions = tiny
    parts = load_for_eval(model_dir, "fp16")
    seen = []
    generate = parts.model.generate

    def spy(**kw):
        seen.append(kw.get("pixel_values"))
        return generate(**kw)

    parts.model.generate = spy
    rows = generate_answers(parts, questions, batch_size=1, **KW)
    assert len(rows) == len(questions)
    pixels = [p for p in seen if p is not None]
    assert len(pixels) == sum(q.image is not None for q in questions) > 0
    assert all(p.dtype == torch.float16 for p in pixels)


def _header(answers):
    return json.loads(partial_path(answers).read_text().splitlines()[0])["header"]


def test_the_configured_dtype_is_loaded_and_recorded(tiny, tmp_path):
    model_dir, questions = tiny
    cfg = load_experiment("tiny", ["evaluation.dtype=bf16", "evaluation.batch_size=1"])
    out = tmp_path / "answers.jsonl"
    _answer(cfg, "gqa", questions, model_dir=model_dir, answers_path=out)
    settings = _header(out)["settings"]
    device = "cuda" if torch.cuda.is_available() else "cpu"  # load_for_eval uses the GPU when there is one
    assert (settings["dtype"], settings["batch_size"], settings["device"]) == ("bf16", 1, device)
    digest = _header(out)["settings_digest"]
    # another dtype: another digest, every question answered again
    cfg32 = load_experiment("tiny", ["evaluation.dtype=fp32", "evaluation.batch_size=1"])
    _answer(cfg32, "gqa", questions, model_dir=model_dir, answers_path=out)
    assert _header(out)["settings"]["dtype"] == "fp32" and _header(out)["settings_digest"] != digest
    assert len(partial_path(out).read_text().splitlines()) == 1 + len(questions)


def test_a_dtype_other_than_the_models_is_refused(tiny, tmp_path):
    model_dir, questions = tiny
    parts = load_for_eval(model_dir, "fp32")
    with pytest.raises(ValueError, match="fp16.*fp32"):
        answer_questions(parts, questions, tmp_path / "a.jsonl", model_path=model_dir, batch_size=1, dtype="fp16",
                         **KW)
    assert not (tmp_path / "a.jsonl").exists()


def test_answers_of_another_batch_size_are_not_reused(tiny, tmp_path):
    # Outside fp32 a batch size can change a greedy answer, so a resumed run never mixes two.
    model_dir, questions = tiny
    parts = load_for_eval(model_dir, "fp16")
    out = tmp_path / "answers.jsonl"
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=1, dtype="fp16", **KW)
    generated = []
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=1, dtype="fp16",
                     on_batch=generated.extend, **KW)
    assert generated == []
    answer_questions(parts, questions, out, model_path=model_dir, batch_size=3, dtype="fp16",
                     on_batch=generated.extend, **KW)
    assert len(generated) == len(questions) and _header(out)["settings"]["batch_size"] == 3
