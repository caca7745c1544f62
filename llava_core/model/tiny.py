"""The tiny default's "pretrained" parts, made in code: a BPE tokenizer trained on the synthetic
corpus, a random Llama and a random CLIP vision tower, saved as ordinary transformers folders so
the rest of the pipeline loads them exactly as it loads Vicuna and CLIP."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
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


def build_tiny_parts(out_dir: Path, corpus: Iterable[str], synthetic_cfg, seed: int = 0) -> dict[str, Path]:
    """Write ``tiny-llm/`` (tokenizer + random Llama) and ``tiny-clip/`` (random CLIP tower)."""
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(corpus, synthetic_cfg.llm.vocab_size)
    llm_cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=synthetic_cfg.llm.hidden_size,
        num_hidden_layers=synthetic_cfg.llm.num_hidden_layers,
        num_attention_heads=synthetic_cfg.llm.num_attention_heads,
        num_key_value_heads=synthetic_cfg.llm.num_attention_heads,
        intermediate_size=synthetic_cfg.llm.intermediate_size, max_position_embeddings=1024,
        # A plain namespace of shapes (tests, tiny_llava) may leave the std out: Llama's default then.
        initializer_range=getattr(synthetic_cfg.llm, "initializer_range", TinyLLMConfig.initializer_range),
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    llm = LlamaForCausalLM(llm_cfg)
    llm.generation_config.pad_token_id = tokenizer.pad_token_id
    llm.save_pretrained(out_dir / "tiny-llm")
    tokenizer.save_pretrained(out_dir / "tiny-llm")

    size = synthetic_cfg.image_size
    v = synthetic_cfg.vision
    vis_cfg = CLIPVisionConfig(hidden_size=v.hidden_size, num_hidden_layers=v.num_hidden_layers,
                               num_attention_heads=v.num_attention_heads, intermediate_size=v.intermediate_size,
                               image_size=size, patch_size=v.patch_size, projection_dim=v.hidden_size)
    CLIPVisionModel(vis_cfg).save_pretrained(out_dir / "tiny-clip")
    image_processor_class()(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
        out_dir / "tiny-clip")
    return {"llm": out_dir / "tiny-llm", "vision_tower": out_dir / "tiny-clip"}
