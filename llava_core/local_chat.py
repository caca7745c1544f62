"""A transformers causal LM answering chat requests in-process: the ``local`` judge and teacher.

Unlike the HTTP client (``chat_client.py``, plumbing) this decides the replies (model loading,
chat template, sampling), so the stages that can use it cover it in their code digests.
"""

from __future__ import annotations


class LocalChat:
    """A transformers causal LM as judge (chat template if the tokenizer has one)."""

    def __init__(self, cfg):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = str(cfg.model)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model)
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.lm = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype)
        if torch.cuda.is_available():
            self.lm.to("cuda")
        self.lm.eval()
        self.requests = 0

    def complete(self, messages: list[dict], *, temperature: float, max_tokens: int, seed: int) -> tuple[str, str]:
        import torch

        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)["input_ids"]
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
            ids = tok(text, return_tensors="pt").input_ids
        ids = ids.to(self.lm.device)
        torch.manual_seed(seed)
        self.requests += 1
        with torch.inference_mode():
            out = self.lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                   do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                                   top_p=None, top_k=None,
                                   pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip(), self.model
