"""The tiny default's "pretrained" parts, made in code: a BPE tokenizer trained on the synthetic
corpus (or a real vocabulary, with its chat template), a random Llama (or Qwen2) and a random CLIP
(or SigLIP) vision tower, saved as ordinary transformers folders so the rest of the pipeline loads
them exactly as it loads Vicuna and CLIP."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from llava_core.config.schema import TinyLLMConfig
from llava_core.data.images import image_processor_class

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Llama-like specials (BOS added, ``<image>`` atomic)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus), trainer=trainer)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", extra_special_tokens=["<image>"], padding_side="right")


def tiny_tokenizer(corpus: Iterable[str], llm_cfg) -> PreTrainedTokenizerFast:
    """The tiny LLM's tokenizer: a real one from ``llm_cfg.tokenizer`` (a folder), or a BPE trained on
    the world's texts."""
    path = getattr(llm_cfg, "tokenizer", None)
    if not path:
        return train_tokenizer(corpus, llm_cfg.vocab_size)
    from transformers import AutoTokenizer

    from llava_core.config.compose import config_dir

    folder = Path(path) if Path(path).is_absolute() else config_dir().parent / path  # relative: to the repository
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder}: data.synthetic.llm.tokenizer names no folder with a tokenizer.json; "
                                "fetch it with `python scripts/fetch_vocab.py <name>` (docs/models.md)")
    return AutoTokenizer.from_pretrained(str(folder))


def tiny_llm_config(llm_cfg, tokenizer) -> PretrainedConfig:
    """A small random LLM's config of the family ``llm_cfg.family`` (llama or qwen2) over ``tokenizer``."""
    from transformers import Qwen2Config

    family = getattr(llm_cfg, "family", "llama")
    shape = dict(vocab_size=len(tokenizer), hidden_size=llm_cfg.hidden_size,
                 num_hidden_layers=llm_cfg.num_hidden_layers, num_attention_heads=llm_cfg.num_attention_heads,
                 num_key_value_heads=llm_cfg.num_attention_heads, intermediate_size=llm_cfg.intermediate_size,
                 max_position_embeddings=1024,
                 # A plain namespace of shapes (tests, tiny_llava) may leave the std out: Llama's default then.
                 initializer_range=getattr(llm_cfg, "initializer_range", TinyLLMConfig.initializer_range),
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                 pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    if family == "llama":
        return LlamaConfig(**shape)
    if family == "qwen2":
        return Qwen2Config(**shape, use_sliding_window=False)
    raise ValueError(f"data.synthetic.llm.family={family!r}: expected llama or qwen2")


def build_tiny_parts(out_dir: Path, corpus: Iterable[str], synthetic_cfg, seed: int = 0) -> dict[str, Path]:
    """Write ``tiny-llm/`` (tokenizer + random LLM) and ``tiny-clip/`` or ``tiny-siglip/`` (a random
    vision tower and its image processor)."""
    from transformers import AutoModelForCausalLM, SiglipVisionConfig, SiglipVisionModel

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(corpus, synthetic_cfg.llm)
    llm = AutoModelForCausalLM.from_config(tiny_llm_config(synthetic_cfg.llm, tokenizer))
    llm.generation_config.pad_token_id = tokenizer.pad_token_id
    llm.save_pretrained(out_dir / "tiny-llm")
    tokenizer.save_pretrained(out_dir / "tiny-llm")

    size = synthetic_cfg.image_size
    v = synthetic_cfg.vision
    tower = getattr(v, "tower", "clip")
    shape = dict(hidden_size=v.hidden_size, num_hidden_layers=v.num_hidden_layers,
                 num_attention_heads=v.num_attention_heads, intermediate_size=v.intermediate_size,
                 image_size=size, patch_size=v.patch_size)
    folder = out_dir / f"tiny-{tower}"
    if tower == "siglip":
        SiglipVisionModel(SiglipVisionConfig(**shape)).save_pretrained(folder)
        image_processor_class("siglip")(size={"height": size, "width": size}).save_pretrained(folder)
    else:
        CLIPVisionModel(CLIPVisionConfig(**shape, projection_dim=v.hidden_size)).save_pretrained(folder)
        image_processor_class()(size={"shortest_edge": size},
                                crop_size={"height": size, "width": size}).save_pretrained(folder)
    return {"llm": out_dir / "tiny-llm", "vision_tower": folder}
