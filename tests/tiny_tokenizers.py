"""Tokenizers built in code for tests that need one without LLaVA's extra tokens."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = ["A chat between a curious user and an artificial intelligence assistant.",
          "USER: What color is the shape? ASSISTANT: Red", "a red circle on a gray background"] * 20


def plain_tokenizer(corpus: list[str] = CORPUS, vocab_size: int = 280) -> PreTrainedTokenizerFast:
    """A byte-level BPE with Llama's specials (BOS added) but no ``<image>`` and no pad, as Vicuna's."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
