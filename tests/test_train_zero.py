"""DeepSpeed ZeRO-2 and ZeRO-3 on 2 CPU processes, with steps whose ranks see different modalities.

Under ZeRO-3 every module call gathers that module's sharded parameters (a collective); under ZeRO-2
the gradients of all parameters are reduced in buckets. So a rank whose micro-batch has no image must
still run the vision tower and the projector, and in the same order as a rank with images
(``BlankImageLlavaModel``, llava_core/model/training_forward.py). Without that these runs crash
within seconds: gloo reports a collective size mismatch (ZeRO-3 in the first forward, ZeRO-2 in the
first backward).

Why every step is mixed, by construction (and checked below): the stage-2 set has 16 records, 8 with
an image and 8 text-only ones, each text-only record longer (in words) than every image record. With
``group_by_modality_length`` and a global batch of 16, each modality is one partial megabatch, so an
epoch is just the final mixed megabatch, which the sampler sorts by length, longest first. At 8 per
device on 2 ranks, rank 0 takes the first 8 (all text-only) and rank 1 the last 8 (all images), in
every step (one step an epoch). The 1-process reference (8 x 2 accumulation, no DeepSpeed) runs the
same two micro-batches, so the ZeRO runs must reach its losses and weights. The ZeRO-2 run fine-tunes
the whole LLM, the ZeRO-3 run trains LoRA adapters (both go through PEFT-free and PEFT forwards); the ZeRO-3 LoRA
run is repeated once on a Qwen2 LLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace as NS

import pytest
import torch
from micro_model import MODEL, SYN
from safetensors.torch import load_file
from train_util import (
    QWEN2,
    ZERO_FINETUNE,
    ZERO_STEPS,
    ZERO_TUNES,
    TinyData,
    build_tiny_data,
    deepspeed_env,
    metrics,
    mixed_modality_data,
    run_stage,
    tiny_data_fixture,  # noqa: F401 (the fixture tiny_data)
    words,
)

from llava_core.config.compose import load_experiment
from llava_core.data.formats import read_llava_records
from llava_core.train.sampler import ModalityLengthSampler

STEPS = ZERO_STEPS
FINETUNE, TUNES = ZERO_FINETUNE, ZERO_TUNES


@pytest.fixture(scope="module")
def mixed(tiny_data, tmp_path_factory) -> TinyData:
    """8 short image records, then the 8 longest image records turned into text-only ones."""
    return mixed_modality_data(tiny_data, tmp_path_factory.mktemp("zero") / "data")


@pytest.fixture(scope="module")
def references(mixed, tmp_path_factory):
    """One process, no DeepSpeed, the same global batch (8 x 2 accumulation); one run per tune, shared."""
    done: dict[str, Path] = {}

    def get(tune: str) -> Path:
        if tune not in done:
            out = tmp_path_factory.mktemp("zero") / f"reference-{tune}"
            run_stage("finetune", mixed, out, [*FINETUNE, *TUNES[tune]], "--init", str(mixed.baseline))
            done[tune] = out
        return done[tune]

    return get


def weights(out: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for f in sorted((out / "model").glob("*.safetensors")):
        tensors.update(load_file(f))
    return tensors


def test_every_step_gives_one_rank_text_only_and_the_other_images(mixed):
    records = read_llava_records(mixed.data_dir / "filtered" / "finetune.json")
    text_only = {i for i, r in enumerate(records) if "image" not in r}
    assert len(text_only) == 8 and len(records) == 16
    assert min(words(records[i]) for i in text_only) > max(words(r) for r in records if "image" in r)
    lengths = [words(r) if "image" in r else -words(r) for r in records]  # the runner's modality_lengths
    seed = load_experiment("tiny", []).seed
    for epoch in range(STEPS):  # one step an epoch
        two_ranks = ModalityLengthSampler(lengths, per_device_batch=8, world_size=2, grad_accum=1, seed=seed)
        one_rank = ModalityLengthSampler(lengths, per_device_batch=8, world_size=1, grad_accum=2, seed=seed)
        two_ranks.set_epoch(epoch)
        one_rank.set_epoch(epoch)
        order, ref_order = list(two_ranks), list(one_rank)
        assert set(order[:8]) == text_only  # rank 0's batch (accelerate gives rank r the r-th batch)
        # The reference's two micro-batches hold the same samples (ties in length may swap places).
        assert [set(ref_order[:8]), set(ref_order[8:])] == [set(order[:8]), set(order[8:])]


@pytest.mark.parametrize("zero, tune", [("zero2.json", "full"), ("zero3.json", "lora")])
def test_zero_with_a_text_only_rank_matches_one_process(mixed, references, tmp_path, zero, tune):
    check_zero_matches_reference(mixed, references(tune), tmp_path / zero.removesuffix(".json"), zero, tune)


def test_zero3_lora_on_a_qwen2_llm_with_a_text_only_rank_matches_one_process(tmp_path_factory, tmp_path):
    """The same check once on another LLM family: Qwen2 (biased q/k/v projections, LoRA on its modules)."""
    data = build_tiny_data(tmp_path_factory.getbasetemp() / "train-data-qwen2", QWEN2)
    qwen = mixed_modality_data(data, tmp_path / "data")
    config = json.loads((qwen.data_dir / "models" / "tiny-llm" / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    reference = tmp_path / "reference-lora"
    run_stage("finetune", qwen, reference, [*QWEN2, *FINETUNE, *TUNES["lora"]], "--init", str(qwen.baseline))
    check_zero_matches_reference(qwen, reference, tmp_path / "zero3", "zero3.json", "lora", QWEN2)
    merged = json.loads((tmp_path / "zero3" / "model" / "config.json").read_text())
    assert merged["text_config"]["model_type"] == "qwen2"


def check_zero_matches_reference(mixed: TinyData, reference: Path, out: Path, zero: str, tune: str,
                                 extra: list[str] | tuple[str, ...] = ()) -> None:
    proc = run_stage("finetune", mixed, out, [*extra, *FINETUNE, *TUNES[tune], "-o", f"finetune.deepspeed={zero}",
                                              "-o", "finetune.resources.gpus=2", "-o", "finetune.keep_checkpoints=true"],
                     "--init", str(mixed.baseline), env=deepspeed_env())
    assert "torchrun --standalone --nnodes 1 --nproc_per_node 2" in proc.stderr
    ds, ref = metrics(out), metrics(reference)
    assert (ds["train/world_size"], ds["train/gradient_accumulation_steps"]) == (2, 1)
    assert (ref["train/world_size"], ref["train/gradient_accumulation_steps"]) == (1, 2)
    # DeepSpeed really sharded across 2 ranks: its checkpoint holds one ZeRO partition per rank.
    step_dir = out / "checkpoints" / f"checkpoint-{STEPS}" / f"global_step{STEPS}"
    assert {p.name for p in step_dir.glob("zero_pp_rank_*_optim_states.pt")} == {
        f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)}
    # Rank 0 (and the reference's first micro-batch) had no image in any step and took the blank path.
    assert ds["train/blank_image_batches"] == ref["train/blank_image_batches"] == STEPS
    assert len(ds["loss_history"]) == STEPS
    assert ds["loss_history"] == pytest.approx(ref["loss_history"], abs=1e-5)
    assert ds["loss_history"][-1] < ds["loss_history"][0] - 0.1  # it trained
    # The saved model (LoRA merged) is whole (ZeRO-3 shards it; the runner gathers it to save) and equal
    # to the reference: the ranks' gradients were averaged, and DeepSpeed did not clip (deepspeed_config).
    got, want = weights(out), weights(reference)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, name
        assert torch.allclose(got[name], want[name], atol=1e-6, rtol=0), (name, (got[name] - want[name]).abs().max())
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"]


# ----------------------------------------------------------------------------- the model itself
@pytest.fixture(scope="module")
def parts_dir(tmp_path_factory):
    from llava_core.model.tiny import build_tiny_parts

    d = tmp_path_factory.mktemp("parts")
    build_tiny_parts(d, ["USER: What color is the shape? ASSISTANT: Red", "a red circle on a gray background"] * 20,
                     SYN, seed=0)
    return d


def _call_order(model, **batch) -> list[str]:
    """The LLaVA parts in the order a forward pass calls them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parts = {"embeddings": base.model.language_model.embed_tokens, "vision_tower": base.model.vision_tower,
             "projector": base.model.multi_modal_projector, "llm_layers": base.model.language_model.layers[0]}
    order: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda *_, n=n: order.append(n)) for n, m in parts.items()]
    try:
        model(**batch).loss.backward()
    finally:
        for h in hooks:
            h.remove()
    return order


@pytest.mark.parametrize("tune", ["full", "lora"])
def test_text_only_batch_runs_the_vision_path_in_image_order_with_the_same_loss(parts_dir, tmp_path, tune):
    from llava_core.model.build import build_llava, set_trainable
    from llava_core.train.runner import _apply_lora

    torch.manual_seed(0)
    parts = build_llava(MODEL, parts_dir)
    set_trainable(parts.model, tune)
    model = parts.model if tune == "full" else _apply_lora(
        parts.model, NS(r=4, alpha=8, dropout=0.0, bias="none", target_modules=["q_proj", "v_proj"]))
    ids = torch.randint(5, 200, (2, 12))
    labels = ids.clone()
    labels[:, :5] = -100
    n_img = parts.num_image_tokens
    image_ids = torch.cat([ids[:, :2], torch.full((2, n_img), model.config.image_token_index), ids[:, 2:]], 1)
    image_labels = torch.cat([labels[:, :2], torch.full((2, n_img), -100), labels[:, 2:]], 1)
    pixels = torch.randn(2, 3, 32, 32)

    model.train()
    image_order = _call_order(model, input_ids=image_ids, labels=image_labels, pixel_values=pixels)
    model.zero_grad(set_to_none=True)
    text_order = _call_order(model, input_ids=ids, labels=labels)
    assert text_order == image_order == ["embeddings", "vision_tower", "projector", "llm_layers"]
    assert parts.model.model.blank_image_batches == 1  # the image batch did not take the blank path
    trained = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    proj = [n for n in trained if "multi_modal_projector" in n]
    assert proj and all(torch.count_nonzero(trained[n]) == 0 for n in proj)  # zero gradients, not none

    # transformers' own path (eval mode: no blank image) gives the bit-identical loss and gradients.
    model.zero_grad(set_to_none=True)
    model.eval()
    assert _call_order(model, input_ids=ids, labels=labels) == ["embeddings", "llm_layers"]
    model.train()
    loss_blank = model(input_ids=ids, labels=labels).loss
    model.eval()
    loss_plain = model(input_ids=ids, labels=labels).loss
    assert torch.equal(loss_blank, loss_plain)
    for n, p in model.named_parameters():
        if p.requires_grad and n not in proj:
            assert torch.equal(p.grad, trained[n]), n
    assert any(torch.count_nonzero(g) for n, g in trained.items() if n not in proj)


def test_saved_model_is_plain_transformers_llava(parts_dir, tmp_path):
    from transformers import LlavaForConditionalGeneration

    from llava_core.model.build import build_llava

    model = build_llava(MODEL, parts_dir).model
    model.save_pretrained(tmp_path / "ours")
    LlavaForConditionalGeneration(model.config).save_pretrained(tmp_path / "plain")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"]
    ours, plain = (set(load_file(tmp_path / d / "model.safetensors")) for d in ("ours", "plain"))
    assert ours == plain and "language_model.model.embed_tokens.weight" in ours  # the llava-hf names
