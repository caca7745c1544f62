"""Checkpoints: our folder loads with Auto* classes, original and llava-hf imports, LoRA merges."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest
import torch
from micro_model import MODEL, SYN
from PIL import Image
from safetensors.torch import save_file
from tiny_tokenizers import CORPUS, plain_tokenizer
from torch import nn
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaProcessor,
)

from llava_core.cli import main
from llava_core.data.conversation import Rendered, render_prompt
from llava_core.data.images import process_image
from llava_core.data.tokenize import encode
from llava_core.model.build import build_llava, set_trainable
from llava_core.model.checkpoints import (
    NON_LORA_FILE,
    import_llava_hf,
    import_original,
    load_llava,
    merge_lora,
    save_llava,
    save_non_lora_trainables,
)
from llava_core.model.tiny import build_tiny_parts

QUESTION = "What color is the shape?"


@pytest.fixture(scope="module")
def parts_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("parts")
    build_tiny_parts(d, CORPUS, SYN, seed=0)
    return d


@pytest.fixture(scope="module")
def image():
    img = Image.new("RGB", (32, 32), (30, 200, 40))
    img.paste((220, 20, 20), (8, 8, 24, 24))
    return img


def _inputs(parts, image, prompt=None):
    """Our own encoding of a generation prompt plus pixels, as evaluation builds them."""
    prompt = prompt or render_prompt("vicuna_v1", QUESTION, has_image=True)
    ids = encode(Rendered(prompt, []), parts.tokenizer, max_length=256, num_image_tokens=parts.num_image_tokens)
    pixels = process_image(image, parts.image_processor, "square")
    return prompt, torch.tensor([ids.input_ids]), pixels[None]


@torch.no_grad()
def _logits(model, ids, pixels):
    model.eval()
    return model(input_ids=ids, pixel_values=pixels).logits


# ----------------------------------------------------------------------------- (a) our folder
@pytest.mark.parametrize("strategy", ["default", "full"])
def test_saved_folder_loads_with_auto_classes_and_gives_identical_logits(parts_dir, tmp_path, image, strategy):
    torch.manual_seed(0)
    parts = build_llava(NS(**{**vars(MODEL), "vision_feature_select_strategy": strategy}), parts_dir)
    out = save_llava(parts.model, parts.tokenizer, parts.image_processor, tmp_path / "ckpt",
                     vision_feature_select_strategy=strategy)
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= {
        p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left

    prompt, ids, pixels = _inputs(parts, image)
    model = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert isinstance(processor, LlavaProcessor)
    batch = processor(text=prompt, images=image, return_tensors="pt")
    assert batch["input_ids"].tolist() == ids.tolist()
    n_image = int((batch["input_ids"] == model.config.image_token_index).sum())
    assert n_image == model.config.image_seq_length == (16 if strategy == "default" else 17)
    assert torch.equal(batch["pixel_values"], pixels)
    assert torch.equal(_logits(model, batch["input_ids"], batch["pixel_values"]), _logits(parts.model, ids, pixels))

    for loaded in (load_llava(out, "fp32"),):
        assert loaded.num_image_tokens == parts.num_image_tokens
        assert torch.equal(_logits(loaded.model, ids, pixels), _logits(parts.model, ids, pixels))


def test_save_refuses_a_processor_that_disagrees_with_the_model(parts_dir, tmp_path):
    parts = build_llava(MODEL, parts_dir)
    with pytest.raises(ValueError, match="vision_feature_select_strategy"):
        save_llava(parts.model, parts.tokenizer, parts.image_processor, tmp_path / "x",
                   vision_feature_select_strategy="full")
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- (b) original layout
def _write_original(src, parts_dir, *, fmt: str, projector_type: str = "mlp2x_gelu"):
    """A fake ``liuhaotian/llava-v1.5`` folder: Llama + ``model.mm_projector`` weights in two shards."""
    torch.manual_seed(1)
    tokenizer = plain_tokenizer()
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, intermediate_size=64,
                                       max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                                       tie_word_embeddings=False))
    projector = nn.Sequential(nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32))
    state = {k: v.contiguous() for k, v in llm.state_dict().items()}
    state.update({f"model.mm_projector.{k}": v for k, v in projector.state_dict().items()})
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # old checkpoints carry these
    keys = sorted(state)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    src.mkdir()
    weight_map = {}
    for i, names in enumerate(shards, 1):
        if fmt == "safetensors":
            name = f"model-0000{i}-of-00002.safetensors"
            save_file({k: state[k] for k in names}, str(src / name), metadata={"format": "pt"})
        else:
            name = f"pytorch_model-0000{i}-of-00002.bin"
            torch.save({k: state[k] for k in names}, src / name)
        weight_map.update(dict.fromkeys(names, name))
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    (src / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = {**llm.config.to_dict(), "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
              "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 32,
              "mm_projector_type": projector_type, "mm_vision_select_layer": -2,
              "mm_vision_select_feature": "patch", "image_aspect_ratio": "pad", "use_mm_proj": True,
              "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "tune_mm_mlp_adapter": False,
              "freeze_mm_mlp_adapter": False, "image_grid_pinpoints": None, "mm_resampler_type": None}
    (src / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(src)
    return llm.eval(), projector.eval(), tokenizer


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@torch.no_grad()
def test_import_original_matches_the_original_forward(parts_dir, tmp_path, image, fmt):
    llm, projector, plain = _write_original(tmp_path / "orig", parts_dir, fmt=fmt)
    out = import_original(tmp_path / "orig", tmp_path / "ours", vision_tower=parts_dir / "tiny-clip")
    parts = load_llava(out, "fp32")
    cfg = parts.model.config
    vocab = len(plain)
    assert cfg.image_token_index == vocab and parts.tokenizer.pad_token_id == vocab + 1
    assert cfg.text_config.vocab_size == 320  # 282 padded to a multiple of 64
    assert cfg.vision_feature_layer == -2 and cfg.vision_feature_select_strategy == "default"
    assert cfg.image_seq_length == 16 and cfg.image_aspect_ratio == "pad"
    emb = parts.model.get_input_embeddings().weight
    assert torch.allclose(emb[vocab:], emb[:vocab].mean(0).expand(320 - vocab, -1))

    prompt, ids, pixels = _inputs(parts, image)
    batch = AutoProcessor.from_pretrained(out)(text=prompt, images=image, return_tensors="pt")
    assert batch["input_ids"].tolist() == ids.tolist()
    got = _logits(parts.model, ids, pixels)

    # The original model's forward: the text embeddings with the projected penultimate-layer patch
    # features spliced in where the image sentinel was.
    clip = CLIPVisionModel.from_pretrained(parts_dir / "tiny-clip").eval()
    features = projector(clip(pixels, output_hidden_states=True).hidden_states[-2][:, 1:])
    row = ids[0].tolist()
    first, last = row.index(vocab), len(row) - row[::-1].index(vocab)
    embed = llm.get_input_embeddings()
    embeds = torch.cat([embed(ids[:, :first]), features, embed(ids[:, last:])], dim=1)
    want = llm(inputs_embeds=embeds).logits
    assert torch.allclose(got[..., :vocab], want, atol=1e-5, rtol=1e-5)


def test_import_original_refuses_other_projectors(parts_dir, tmp_path):
    _write_original(tmp_path / "orig", parts_dir, fmt="safetensors", projector_type="linear")
    with pytest.raises(ValueError, match="mm_projector_type='linear'"):
        import_original(tmp_path / "orig", tmp_path / "ours", vision_tower=parts_dir / "tiny-clip")
    assert not (tmp_path / "ours").exists()


# ----------------------------------------------------------------------------- (c) llava-hf
@pytest.mark.parametrize("via_cli", [False, True])
def test_llava_hf_round_trip(parts_dir, tmp_path, image, via_cli):
    torch.manual_seed(2)
    parts = build_llava(MODEL, parts_dir)
    src = tmp_path / "hf"
    parts.model.save_pretrained(src)
    # An older llava-hf processor: no num_additional_image_tokens, so it would count 15 tokens.
    LlavaProcessor(image_processor=parts.image_processor, tokenizer=parts.tokenizer, patch_size=8,
                   vision_feature_select_strategy="default", chat_template="{{ messages }}").save_pretrained(src)
    if via_cli:
        assert main(["import-checkpoint", str(src), "--out", str(tmp_path / "ours"), "--layout", "llava-hf"]) == 0
    else:
        import_llava_hf(src, tmp_path / "ours")
    processor = AutoProcessor.from_pretrained(tmp_path / "ours")
    assert processor.num_additional_image_tokens == 1 and processor.chat_template == "{{ messages }}"
    prompt, ids, pixels = _inputs(parts, image)
    batch = processor(text=prompt, images=image, return_tensors="pt")
    assert batch["input_ids"].tolist() == ids.tolist()
    loaded = load_llava(tmp_path / "ours", "fp32")
    assert loaded.tokenizer.get_vocab()["<image>"] == parts.model.config.image_token_index
    assert torch.equal(_logits(loaded.model, ids, pixels), _logits(parts.model, ids, pixels))


# ----------------------------------------------------------------------------- (d) LoRA merge
@torch.no_grad()
def test_lora_merge_matches_the_unmerged_adapter(parts_dir, tmp_path, image):
    from llava_core.train.finetune_outputs import save_stage2
    from llava_core.train.runner import _apply_lora

    torch.manual_seed(3)
    parts = build_llava(MODEL, parts_dir)
    base_dir = save_llava(parts.model, parts.tokenizer, parts.image_processor, tmp_path / "base")
    set_trainable(parts.model, "lora")
    peft_model = _apply_lora(parts.model, NS(r=4, alpha=8, dropout=0.0, bias="none",
                                             target_modules=["q_proj", "v_proj"]))
    assert not [n for n, _ in peft_model.named_parameters() if "lora_" in n and "vision_tower" in n]
    for name, p in peft_model.named_parameters():  # "train": LoRA B starts at zero, move it and the projector
        if "lora_B" in name or "multi_modal_projector" in name:
            p.add_(torch.randn_like(p) * 0.1)
    saved = save_non_lora_trainables(peft_model, tmp_path / "extra")
    assert saved and all(n.startswith("model.multi_modal_projector.") for n in saved)
    _, ids, pixels = _inputs(parts, image)
    want = _logits(peft_model, ids, pixels)

    # What the runner writes at the end of a LoRA stage 2: adapter (+ projector) and merged model.
    save_stage2(peft_model, parts, tmp_path / "run")
    assert (tmp_path / "run" / "adapter" / NON_LORA_FILE).exists()
    for out in (tmp_path / "run" / "model", merge_lora(base_dir, tmp_path / "run" / "adapter", tmp_path / "merged")):
        merged = load_llava(out, "fp32")
        assert not any("lora" in n for n, _ in merged.model.named_parameters())
        assert torch.allclose(_logits(merged.model, ids, pixels), want, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- (e) release layouts
@pytest.mark.parametrize("layout", ["original", "llava-hf"])
@torch.no_grad()
def test_a_model_written_in_a_release_layout_imports_back_to_the_same_model(parts_dir, tmp_path, image, layout):
    """The tiny world's stand-ins of released weights: a model written in the original
    (liuhaotian) or llava-hf layout and imported again gives the logits and the greedy answer of
    the model it was made from; the original layout holds no CLIP weights, as the releases."""
    from llava_core.model.checkpoints import read_state_dict
    from llava_core.model.export import export_llava_hf, export_original, tiny_release_parts

    source = tiny_release_parts(MODEL, parts_dir, seed=5)
    again = tiny_release_parts(MODEL, parts_dir, seed=5)  # the same call gives the same model
    assert all(torch.equal(a, b) for a, b in zip(source.model.state_dict().values(),
                                                  again.model.state_dict().values(), strict=True))
    if layout == "original":
        folder = export_original(source, tmp_path / "release", vision_tower="tiny-clip")
        state = read_state_dict(folder)
        assert not any("vision_tower" in k for k in state) and "model.mm_projector.2.bias" in state
        assert json.loads((folder / "config.json").read_text())["architectures"] == ["LlavaLlamaForCausalLM"]
        out = import_original(folder, tmp_path / "ours", vision_tower=parts_dir / "tiny-clip")
    else:
        folder = export_llava_hf(source, tmp_path / "release")
        out = import_llava_hf(folder, tmp_path / "ours")
    imported = load_llava(out, "fp32")
    _, ids, pixels = _inputs(source, image)
    want, got = _logits(source.model, ids, pixels), _logits(imported.model, ids, pixels)
    assert torch.allclose(got[..., :want.shape[-1]], want, atol=1e-6, rtol=1e-6)
    gen = dict(max_new_tokens=8, do_sample=False, pad_token_id=source.tokenizer.pad_token_id)
    assert torch.equal(imported.model.generate(input_ids=ids, pixel_values=pixels, **gen),
                       source.model.generate(input_ids=ids, pixel_values=pixels, **gen))


@torch.no_grad()
def test_a_lora_release_merged_onto_its_base_gives_the_adapters_own_forward(parts_dir, tmp_path):
    """A release in the layout of liuhaotian/llava-v1.5-7b-lora (a PEFT adapter saved by PEFT itself,
    non_lora_trainables.bin, the LLaVA config) merged onto its base and imported: its text logits
    are those of PEFT's unmerged adapter forward, and its projector is the release's."""
    from peft import LoraConfig, get_peft_model

    from llava_core.model.export import original_config
    from llava_core.model.lora_release import merge_lora_release

    base = parts_dir / "tiny-llm"
    torch.manual_seed(3)
    peft_model = get_peft_model(LlamaForCausalLM.from_pretrained(base, dtype=torch.float32),
                                LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                           target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # PEFT starts B at zero: a trained adapter's is not
            param.normal_(0, 0.05)
    release = tmp_path / "lora"
    peft_model.save_pretrained(release)
    llm_cfg = peft_model.base_model.model.config
    projector = nn.Sequential(nn.Linear(32, llm_cfg.hidden_size), nn.GELU(), nn.Linear(llm_cfg.hidden_size,
                                                                                    llm_cfg.hidden_size))
    torch.save({f"base_model.model.model.mm_projector.{k}": v for k, v in projector.state_dict().items()},
               release / "non_lora_trainables.bin")
    (release / "config.json").write_text(json.dumps(original_config(llm_cfg.to_dict(), vision_tower="tiny-clip",
                                                                    vision_hidden_size=32)))
    merged = merge_lora_release(release, base, tmp_path / "merged")
    parts = load_llava(import_original(merged, tmp_path / "ours", vision_tower=parts_dir / "tiny-clip"), "fp32")
    ids = torch.tensor([parts.tokenizer("What color is the shape? The shape is red.").input_ids])
    peft_model.eval()
    want = peft_model(input_ids=ids).logits
    got = parts.model.eval()(input_ids=ids).logits[..., :want.shape[-1]]
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(LlamaForCausalLM.from_pretrained(base)(input_ids=ids).logits, want, atol=1e-3)
    assert torch.equal(parts.model.model.multi_modal_projector.linear_2.bias, projector[2].bias)
