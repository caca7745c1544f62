"""LLaVA built from parts: shapes, freezing per stage, projector files, a training step."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch
from micro_model import MODEL, SYN
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from llava_core.model.build import build_llava, load_projector, save_projector, set_trainable
from llava_core.model.tiny import build_tiny_parts


@pytest.fixture(scope="module")
def parts_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("parts")
    corpus = ["A chat between a curious user and an artificial intelligence assistant.",
              "USER: What color is the shape? ASSISTANT: Red", "a red circle on a gray background"] * 20
    build_tiny_parts(d, corpus, SYN, seed=0)
    return d


def test_projector_has_the_7b_parameter_count_on_meta():
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(hidden_size=1024, num_attention_heads=16), text_config=LlamaConfig(hidden_size=4096),
                      multimodal_projector_bias=True, projector_hidden_act="gelu")
    with torch.device("meta"):
        proj = LlavaMultiModalProjector(cfg)
    assert sum(p.numel() for p in proj.parameters()) == 20_979_712
    cfg13 = LlavaConfig(vision_config=CLIPVisionConfig(hidden_size=1024, num_attention_heads=16), text_config=LlamaConfig(hidden_size=5120))
    with torch.device("meta"):
        assert sum(p.numel() for p in LlavaMultiModalProjector(cfg13).parameters()) == 31_467_520


def test_build_places_parts_and_counts_image_tokens(parts_dir):
    parts = build_llava(MODEL, parts_dir)
    assert parts.num_image_tokens == 16  # (32 / 8) ** 2, CLS dropped
    assert not any(p.is_meta for p in parts.model.parameters())
    assert parts.tokenizer.convert_tokens_to_ids("<image>") == parts.model.config.image_token_index


@pytest.mark.parametrize("tune", ["projector", "full"])
def test_freezing_follows_the_stage(parts_dir, tune):
    model = build_llava(MODEL, parts_dir).model
    counts = set_trainable(model, tune)
    assert counts["params/vision_tower/frozen"] > 0 and "params/vision_tower/trainable" not in counts
    assert counts["params/projector/trainable"] > 0
    if tune == "projector":
        assert counts["params/trainable"] == counts["params/projector/trainable"]
    else:
        assert counts["params/language_model/trainable"] > 0 and counts["params/lm_head/trainable"] > 0


def test_projector_file_round_trip_uses_the_original_keys(parts_dir, tmp_path):
    a = build_llava(MODEL, parts_dir).model
    save_projector(a, tmp_path / "mm_projector.bin")
    keys = set(torch.load(tmp_path / "mm_projector.bin", weights_only=True))
    assert keys == {f"model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    torch.manual_seed(123)
    b = build_llava(MODEL, parts_dir).model
    assert not torch.equal(a.model.multi_modal_projector.linear_1.weight, b.model.multi_modal_projector.linear_1.weight)
    load_projector(b, tmp_path / "mm_projector.bin")
    for pa, pb in zip(a.model.multi_modal_projector.parameters(), b.model.multi_modal_projector.parameters(),
                      strict=True):
        assert torch.equal(pa, pb)


def test_stage1_step_updates_only_the_projector(parts_dir):
    parts = build_llava(MODEL, parts_dir)
    model = parts.model
    set_trainable(model, "projector")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    img = parts.model.config.image_token_index
    ids = torch.tensor([[1] + [img] * 16 + [5, 6, 7, 2]])
    labels = ids.clone()
    labels[:, :17] = -100
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32), labels=labels).loss
    loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all("multi_modal_projector" in n for n in changed)


def test_llava_v1_linear_projector_is_exact_and_round_trips(parts_dir, tmp_path):
    linear_cfg = NS(**{**vars(MODEL), "projector_type": "linear"})
    parts = build_llava(linear_cfg, parts_dir)
    model = parts.model
    counts = set_trainable(model, "projector")
    proj = model.model.multi_modal_projector
    x = torch.randn(3, 32)
    assert torch.allclose(proj(x), proj.linear_1(x), atol=1e-6)  # one linear map, as LLaVA-1.0
    assert counts["params/trainable"] == 32 * 32 + 32  # linear_1 only; linear_2 is a frozen identity
    save_projector(model, tmp_path / "mm_projector.bin")
    assert set(torch.load(tmp_path / "mm_projector.bin", weights_only=True)) == {
        "model.mm_projector.weight", "model.mm_projector.bias"}
    other = build_llava(linear_cfg, parts_dir).model
    load_projector(other, tmp_path / "mm_projector.bin")
    assert torch.equal(other.model.multi_modal_projector(x), proj(x))
    from llava_core.model.checkpoints import load_llava, save_llava

    save_llava(model, parts.tokenizer, parts.image_processor, tmp_path / "ckpt")
    loaded = load_llava(tmp_path / "ckpt", "fp32").model
    assert torch.equal(loaded.model.multi_modal_projector(x), proj(x))
