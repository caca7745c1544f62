"""The two loss weightings (``StageConfig.loss_weighting``), checked against a hand computation.

One optimizer step of stage 1 on 2 CPU processes (gloo DDP) with 2 micro-batches of 2 samples per
rank (global batch 8), on captions of different token counts. Plain SGD with a constant learning
rate, no warmup, no weight decay and no clipping moves the projector by exactly -lr x gradient, so
the gradient the run used is read off the saved projector and compared with the one computed here,
sample by sample, on the same initial model:

- ``rank_mean`` (the original run): the mean over the micro-batches (2 ranks x 2 accumulation steps)
  of each micro-batch's mean token loss;
- ``global_token`` (transformers 5's default): all token losses of the global batch summed, divided by
  the number of supervised tokens of the global batch.

The micro-batches are consecutive pairs of the sampler's order (``group_by_modality_length``, so the
order is fixed by the seed and the word counts); accelerate deals them out to the ranks in turn.
"""

from __future__ import annotations

import pytest
import torch
from train_util import (
    DATA,
    TinyData,
    data_with_records,
    metrics,
    projector,
    run_stage,
    tiny_data_fixture,  # noqa: F401 (the fixture tiny_data)
)
from transformers import set_seed

from llava_core.config.compose import ConfigError, load_experiment
from llava_core.data.dataset import Collator, SupervisedDataset
from llava_core.data.formats import read_llava_records
from llava_core.model.build import build_llava, save_projector, set_trainable
from llava_core.train.sampler import ModalityLengthSampler

LR, PER_DEVICE, WORLD, ACCUM = 1.0, 2, 2, 2
PRETRAIN = [*DATA, "-o", "pretrain.max_steps=1", "-o", f"pretrain.global_batch_size={PER_DEVICE * WORLD * ACCUM}",
            "-o", f"pretrain.per_device_train_batch_size={PER_DEVICE}", "-o", "pretrain.optim=sgd",
            "-o", f"pretrain.learning_rate={LR}", "-o", "pretrain.lr_scheduler_type=constant",
            "-o", "pretrain.warmup_ratio=0", "-o", "pretrain.weight_decay=0", "-o", "pretrain.max_grad_norm=0",
            "-o", "pretrain.group_by_modality_length=true", "-o", "pretrain.logging_steps=1",
            "-o", "pretrain.save_steps=100"]


@pytest.fixture(scope="module")
def data(tiny_data, tmp_path_factory) -> TinyData:
    """8 captions of 8 different word counts (so of different token counts)."""
    by_words: dict[int, dict] = {}
    for rec in read_llava_records(tiny_data.data_dir / "filtered" / "pretrain.json"):
        by_words.setdefault(sum(len(t["value"].split()) for t in rec["conversations"]), rec)
    assert len(by_words) >= 8
    chosen = [by_words[w] for w in sorted(by_words)[-8:]]
    return data_with_records(tiny_data, tmp_path_factory.mktemp("weighting") / "data", "pretrain", chosen)


@pytest.fixture(scope="module")
def hand(data, tmp_path_factory) -> dict:
    """The initial projector and, per weighting, the step's loss and projector gradient, by hand."""
    cfg = load_experiment("tiny", PRETRAIN[1::2])  # the values of the "-o KEY=VALUE" pairs
    st = cfg.pretrain
    set_seed(cfg.seed)  # as the runner: the projector's initialisation is drawn from this seed
    parts = build_llava(cfg.model, data.data_dir)
    model = parts.model
    set_trainable(model, st.tune)
    init_file = tmp_path_factory.mktemp("weighting") / "init.bin"
    save_projector(model, init_file)
    dataset = SupervisedDataset(read_llava_records(data.data_dir / "filtered" / "pretrain.json"),
                                data.data_dir / cfg.data.pretrain_images, template=st.template,
                                aspect=st.image_aspect_ratio, tokenizer=parts.tokenizer,
                                image_processor=parts.image_processor, num_image_tokens=parts.num_image_tokens,
                                max_length=cfg.model.model_max_length)
    params = [p for p in model.parameters() if p.requires_grad]
    collate = Collator(parts.tokenizer.pad_token_id)
    model.train()
    sums, counts, grads = [], [], []
    for i in range(len(dataset)):  # each sample alone: summed token loss, token count, gradient of the sum
        batch = collate([dataset[i]])
        batch.pop("num_truncated")
        n = int((batch["labels"][:, 1:] != -100).sum())  # the shifted labels the loss is taken over
        total = model(**batch).loss * n
        sums.append(total.item())
        counts.append(n)
        grads.append(torch.autograd.grad(total, params))
    sampler = ModalityLengthSampler(dataset.modality_lengths(), per_device_batch=PER_DEVICE, world_size=WORLD,
                                    grad_accum=ACCUM, seed=cfg.seed)
    order = list(sampler)
    micro = [order[k:k + PER_DEVICE] for k in range(0, len(order), PER_DEVICE)]
    assert len(micro) == WORLD * ACCUM and sorted(order) == list(range(len(dataset)))
    assert len({sum(counts[i] for i in mb) for mb in micro}) > 1  # micro-batches of different token counts

    def combine(weights: dict[int, float]) -> list[torch.Tensor]:
        return [sum(weights[i] * grads[i][k] for i in weights) for k in range(len(params))]

    rank_mean = {i: 1 / (len(micro) * sum(counts[j] for j in mb)) for mb in micro for i in mb}
    global_token = {i: 1 / sum(counts) for i in range(len(dataset))}
    return {"init": torch.load(init_file, weights_only=True), "names": _projector_names(model),
            "rank_mean": {"grad": combine(rank_mean), "loss": sum(rank_mean[i] * sums[i] for i in rank_mean)},
            "global_token": {"grad": combine(global_token), "loss": sum(sums) / sum(counts)}}


def _projector_names(model) -> list[str]:
    """``mm_projector.bin`` keys of the trainable parameters, in ``model.parameters()`` order."""
    layer = {"linear_1": "model.mm_projector.0", "linear_2": "model.mm_projector.2"}
    out = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            part, param = name.removeprefix("model.multi_modal_projector.").split(".")
            out.append(f"{layer[part]}.{param}")
    return out


def test_hand_computations_of_the_two_weightings_differ(hand):
    a, b = hand["rank_mean"]["grad"], hand["global_token"]["grad"]
    assert max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) > 1e-3
    assert abs(hand["rank_mean"]["loss"] - hand["global_token"]["loss"]) > 1e-3


@pytest.mark.parametrize("weighting", ["rank_mean", "global_token"])
def test_one_step_on_two_processes_uses_the_hand_computed_gradient(data, hand, tmp_path, weighting):
    out = tmp_path / weighting
    overrides = [*PRETRAIN, "-o", "pretrain.resources.gpus=2", "-o", f"pretrain.loss_weighting={weighting}"]
    proc = run_stage("pretrain", data, out, overrides)
    assert "torchrun --standalone --nnodes 1 --nproc_per_node 2" in proc.stderr
    m = metrics(out)
    assert (m["train/world_size"], m["train/gradient_accumulation_steps"], m["train/steps"]) == (WORLD, ACCUM, 1)
    assert m["loss_history"][0] == pytest.approx(hand[weighting]["loss"], abs=1e-5)
    after = projector(out)
    other = "global_token" if weighting == "rank_mean" else "rank_mean"
    for name, want, wrong in zip(hand["names"], hand[weighting]["grad"], hand[other]["grad"], strict=True):
        used = (after[name] - hand["init"][name]) / -LR
        assert torch.allclose(used, want, atol=1e-6, rtol=0), (name, (used - want).abs().max())
        assert not torch.allclose(used, wrong, atol=1e-4, rtol=0), name


def test_the_original_weighting_is_the_default_and_names_are_checked():
    for name in ("tiny", "llava-v1.5-7b", "llava-v1.5-7b-lora", "llava-v1.5-13b", "llava-v1.5-13b-lora"):
        cfg = load_experiment(name, [])
        assert cfg.pretrain.loss_weighting == cfg.finetune.loss_weighting == "rank_mean", name
    with pytest.raises(ConfigError, match="finetune.loss_weighting='per_sample' is not allowed"):
        load_experiment("tiny", ["finetune.loss_weighting=per_sample"])
