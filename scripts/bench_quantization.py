#!/usr/bin/env python
"""4-bit and 8-bit loading: answer agreement with the unquantised model, and weight memory.

Two measurements (docs/evaluation.md records them):

* ``--model DIR --eval-root DIR``: a trained stage-2 model (e.g. the tiny DAG's
  ``results/tiny/finetune/model``) answers every question of the preset's benchmarks unquantised
  (fp32 on a CPU, fp16 on a GPU), in 8-bit and in 4-bit (``llava-core evaluate``'s loader, batch
  ``--batch-size``); prints, per benchmark and overall, the share of answers identical to the
  unquantised ones, and the loaded model's weight memory in each mode;
* always: the weight memory of LLaVA-1.5-7B and -13B in fp16, 8-bit and 4-bit, computed from the
  architecture (built on the meta device, no weights) and the storage format of each mode
  (:func:`weight_bytes`); with ``--model``, the same formula is checked against the memory of the
  loaded tiny model in each mode::

    python scripts/bench_quantization.py --model results/tiny/finetune/model \\
        --eval-root results/data/tiny/eval --json out.json

Exit status 0; the figures are the output (nothing is asserted).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from torch import nn

MODES = ("none", "8bit", "4bit")


def weight_bytes(model: nn.Module, mode: str, base_bytes: int = 2) -> int:
    """Bytes of ``model``'s weights loaded in ``mode``: the quantised linear layers (every
    ``nn.Linear`` outside the vision tower and the output head, as ``llava_core.model.quantize``
    loads them) at 1 byte per weight plus an fp32 scale per output row (LLM.int8()), or at 4 bits
    plus one 8-bit absmax per 64 weights and an fp32 one per 256 of those (NF4 with double
    quantisation); everything else (and every bias) at ``base_bytes`` per parameter."""
    from llava_core.model.quantize import KEPT_MODULES

    total = 0
    counted: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or mode == "none" or any(s in name.split(".") for s in KEPT_MODULES):
            continue
        w = module.weight
        n = w.numel()
        counted.add(id(w))
        total += n + 4 * w.shape[0] if mode == "8bit" else n // 2 + -(-n // 64) + 4 * -(-n // (64 * 256))
    params = list(model.parameters()) + list(model.buffers())
    return total + sum(p.numel() * base_bytes for p in params if id(p) not in counted)


def llava15(size: str) -> nn.Module:
    """LLaVA-1.5-7B or -13B (Vicuna-v1.5, CLIP ViT-L/14-336, MLP projector) on the meta device."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    hidden, inter, layers, heads = {"7b": (4096, 11008, 32, 32), "13b": (5120, 13824, 40, 40)}[size]
    text = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096)
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                              num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768)
    cfg = LlavaConfig(text_config=text, vision_config=vision, image_token_index=31999, projector_hidden_act="gelu")
    with torch.device("meta"):
        return LlavaForConditionalGeneration(cfg)


def memory_table() -> list[dict]:
    rows = []
    for size in ("7b", "13b"):
        model = llava15(size)
        n = sum(p.numel() for p in model.parameters())
        row = {"model": f"llava-v1.5-{size}", "parameters": n}
        for mode in MODES:
            row[f"{mode}_gib"] = round(weight_bytes(model, mode) / 2**30, 2)
        rows.append(row)
        print(f"llava-v1.5-{size}: {n / 1e9:.2f} B parameters; weights fp16 {row['none_gib']} GiB, "
              f"8-bit {row['8bit_gib']} GiB, 4-bit {row['4bit_gib']} GiB")
    return rows


def agreement(model_dir: Path, eval_root: Path, experiment: str, batch_size: int) -> dict:
    from llava_core.config.compose import load_experiment
    from llava_core.evaluate.benchmarks import get_benchmark
    from llava_core.evaluate.generate import generate_answers
    from llava_core.evaluate.run import load_for_eval
    from llava_core.model.checkpoints import load_llava

    cfg = load_experiment(experiment)
    dtype = "fp16" if torch.cuda.is_available() else "fp32"
    sets = {b: get_benchmark(b).load_questions(eval_root) for b in cfg.evaluation.benchmarks}
    texts: dict[str, dict[str, list[str]]] = {}
    out: dict = {"dtype": dtype, "batch_size": batch_size, "questions": sum(len(q) for q in sets.values()),
                 "modes": {}}
    for mode in MODES:
        parts = load_for_eval(model_dir, dtype, mode)
        t0 = time.perf_counter()
        texts[mode] = {b: [r["text"] for r in generate_answers(
            parts, qs, template=cfg.model.conversation_template, aspect=cfg.evaluation.image_aspect_ratio,
            batch_size=batch_size, max_new_tokens=cfg.evaluation.benchmarks[b].max_new_tokens, model_id="bench",
            progress=False)] for b, qs in sets.items()}
        seconds = time.perf_counter() - t0
        # The formula, on the model as loaded (fp32 weights where not quantised, on a CPU).
        meta = load_llava(model_dir, dtype).model
        row = {"measured_bytes": int(parts.model.get_memory_footprint()),
               "formula_bytes": weight_bytes(meta, mode, base_bytes=meta.dtype.itemsize),
               "seconds": round(seconds, 1)}
        same = {b: sum(x == y for x, y in zip(texts[mode][b], texts["none"][b], strict=True)) for b in sets}
        row["agree_pct"] = round(100 * sum(same.values()) / out["questions"], 2)
        row["agree_pct_by_benchmark"] = {b: round(100 * same[b] / len(sets[b]), 1) for b in sets}
        out["modes"][mode] = row
        print(f"{mode:>5}: {row['agree_pct']:6.2f}% of {out['questions']} answers = unquantised; weights "
              f"{row['measured_bytes']:,} B loaded, {row['formula_bytes']:,} B by the formula; {seconds:.0f} s")
        if mode != "none":
            print("       by benchmark: " + ", ".join(f"{b} {p}" for b, p in row["agree_pct_by_benchmark"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="stage-2 model folder")
    p.add_argument("--eval-root", help="eval kit folder of the benchmarks (with --model)")
    p.add_argument("--experiment", default="tiny", help="preset giving the benchmarks and answer budgets")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if bool(args.model) != bool(args.eval_root):
        p.error("--model and --eval-root go together")
    logging.disable(logging.WARNING)
    out = {"date": time.strftime("%Y-%m-%d"), "device": "cuda" if torch.cuda.is_available() else "cpu",
           "memory": memory_table()}
    if args.model:
        out["agreement"] = agreement(Path(args.model), Path(args.eval_root), args.experiment, args.batch_size)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
