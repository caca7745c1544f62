#!/usr/bin/env python
"""GPU throughput check: ~20 LLaVA stage-2 steps under DeepSpeed ZeRO-3 on random data.

Builds a LLaVA from config alone (random weights, no downloads): a Llama of hidden 2048 and 22
layers (about 1.2B parameters) behind a CLIP ViT-L/14-336 tower and the mlp2x_gelu projector,
in bf16. It then trains the LLM and projector (vision tower frozen, as in stage 2) through the
HF Trainer with ``config/deepspeed/zero3.json`` on random batches of ``--seq-len`` tokens, 576
of them image tokens, and prints tokens/s, peak GPU memory and model FLOPs utilisation (MFU).

    python scripts/gpu_check.py                      # one GPU (sets a 1-process rendezvous itself)
    torchrun --nproc_per_node 8 scripts/gpu_check.py # one node
    python scripts/gpu_check.py --cpu --tiny         # CPU smoke test of the same code path (~1 min)

MFU = (6 x trained parameters x tokens + 2 x vision parameters x patches) per second over the
GPU's dense bf16 peak (H100/H200 SXM 989e12, H100 PCIe 756e12, A100 312e12), summed over GPUs.
Results go to stdout as a table and as one JSON line (``GPU_CHECK {...}``). See docs/gpu_check.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PEAK_BF16 = [("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
             ("A10G", 70e12)]


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak of one GPU, from its name; None if unknown (MFU is then not reported)."""
    for key, peak in PEAK_BF16:
        if key.lower() in device_name.lower():
            return peak
    return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup-steps", type=int, default=5, help="steps left out of the timing")
    p.add_argument("--batch-size", type=int, default=8, help="per device")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sample, image tokens included")
    p.add_argument("--layers", type=int, default=22, help="Llama layers (16-22 give about 0.9-1.2B)")
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--deepspeed", default="zero3.json", help="file under config/deepspeed/, or 'none'")
    p.add_argument("--no-gradient-checkpointing", action="store_true")
    p.add_argument("--cpu", action="store_true", help="run on the CPU (fp32)")
    p.add_argument("--tiny", action="store_true", help="a tiny model and short sequences (smoke test)")
    p.add_argument("--out", default=None, help="scratch folder for the Trainer (default: a temp folder)")
    return p.parse_args(argv)


def build_config(args):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    if args.tiny:
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, projection_dim=64)
        text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=4, vocab_size=1000, max_position_embeddings=256)
        image_token = 999
    else:
        # CLIP ViT-L/14 at 336 px (LLaVA-1.5's tower): 577 positions, 576 patch tokens after CLS drop.
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768,
                                  hidden_act="quick_gelu")
        text = LlamaConfig(hidden_size=args.hidden, intermediate_size=int(args.hidden * 2.75),
                           num_hidden_layers=args.layers, num_attention_heads=args.hidden // 128,
                           num_key_value_heads=args.hidden // 128, vocab_size=32064, max_position_embeddings=4096,
                           rms_norm_eps=1e-5)
        image_token = 32000
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token,
                       projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default", multimodal_projector_bias=True)


class RandomLlavaBatches:
    """Map-style dataset of random samples: ``n_image`` image tokens first, then random text."""

    def __init__(self, cfg, seq_len: int, n: int, dtype):
        v = cfg.vision_config
        self.n_image = (v.image_size // v.patch_size) ** 2
        if seq_len <= self.n_image + 8:
            raise SystemExit(f"--seq-len {seq_len} must exceed the {self.n_image} image tokens")
        self.cfg, self.seq_len, self.n, self.dtype = cfg, seq_len, n, dtype
        self.image_size = v.image_size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import torch

        g = torch.Generator().manual_seed(i)
        text = torch.randint(3, self.cfg.image_token_index, (self.seq_len - self.n_image,), generator=g)
        ids = torch.cat([torch.full((self.n_image,), self.cfg.image_token_index), text])
        labels = ids.clone()
        labels[: self.n_image + 16] = -100  # image tokens and a prompt are not predicted
        pixels = torch.randn(3, self.image_size, self.image_size, generator=g).to(self.dtype)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "pixel_values": pixels}


def collate(samples):
    import torch

    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tiny:
        args.seq_len = min(args.seq_len, 64)
        args.batch_size = min(args.batch_size, 4)
        args.steps = min(args.steps, 6)
        args.warmup_steps = min(args.warmup_steps, 2)
    # One process without torchrun: DeepSpeed needs a rendezvous (else it looks for MPI).
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29511")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch
    from transformers import LlavaForConditionalGeneration, Trainer, TrainerCallback, TrainingArguments

    on_gpu = torch.cuda.is_available() and not args.cpu
    if not on_gpu and not args.cpu:
        print("no GPU found: rerun with --cpu (add --tiny for a quick smoke test)", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if on_gpu else torch.float32
    world = int(os.environ["WORLD_SIZE"])
    cfg = build_config(args)
    torch.manual_seed(0)
    t0 = time.time()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.cuda.set_device(device)
    with device:  # initialise on the GPU: random init of ~1.5B parameters on a CPU takes minutes
        model = LlavaForConditionalGeneration._from_config(cfg, torch_dtype=dtype)
    model.model.vision_tower.requires_grad_(False)  # stage 2: LLM and projector train
    n_vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    n_trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())  # before ZeRO-3 partitions them
    build_s = time.time() - t0

    ds_cfg = None
    if args.deepspeed != "none":
        ds_cfg = json.loads((ROOT / "config" / "deepspeed" / args.deepspeed).read_text())
    import tempfile

    out = args.out or tempfile.mkdtemp(prefix="gpu_check-")
    targs = TrainingArguments(
        output_dir=out, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        max_steps=args.steps, learning_rate=2e-5, warmup_steps=0, lr_scheduler_type="cosine", weight_decay=0.0,
        bf16=on_gpu, tf32=True if on_gpu else None, gradient_checkpointing=not args.no_gradient_checkpointing,
        deepspeed=ds_cfg, logging_steps=1, save_strategy="no", report_to="none", remove_unused_columns=False,
        dataloader_num_workers=2 if on_gpu else 0, use_cpu=not on_gpu, seed=0, disable_tqdm=True,
    )
    if not args.no_gradient_checkpointing:
        model.enable_input_require_grads()
    data = RandomLlavaBatches(cfg, args.seq_len, n=args.steps * args.batch_size * world, dtype=dtype)

    class Timer(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.losses: list[float] = []

        def on_step_end(self, a, state, control, **kw):
            if on_gpu:
                torch.cuda.synchronize()
            self.marks.append(time.perf_counter())

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    timer = Timer()
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[timer])
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    t1 = time.time()
    trainer.train()
    train_s = time.time() - t1

    timed = timer.marks[args.warmup_steps:]
    steps = len(timed) - 1
    if steps < 1:
        print(f"too few steps to time: {len(timer.marks)} steps, {args.warmup_steps} warm-up", file=sys.stderr)
        return 2
    step_s = (timed[-1] - timed[0]) / steps
    tokens_per_step = args.batch_size * args.seq_len * world
    images_per_step = args.batch_size * world
    tok_s = tokens_per_step / step_s
    flops_per_step = 6 * n_trained * tokens_per_step + 2 * n_vision * (data.n_image + 1) * images_per_step
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    peak = peak_flops(name) if on_gpu else None
    result = {
        "device": name, "world_size": world, "deepspeed": args.deepspeed, "dtype": str(dtype).split(".")[-1],
        "params_total": n_total, "params_trained": n_trained,
        "params_vision": n_vision, "batch_per_device": args.batch_size, "seq_len": args.seq_len,
        "image_tokens": data.n_image, "gradient_checkpointing": not args.no_gradient_checkpointing,
        "steps": len(timer.marks), "timed_steps": steps, "step_seconds": step_s, "tokens_per_second": tok_s,
        "tokens_per_second_per_gpu": tok_s / world, "model_tflops_per_second": flops_per_step / step_s / 1e12,
        "mfu": (flops_per_step / step_s) / (peak * world) if peak else None,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30 if on_gpu else None,
        "first_loss": timer.losses[0] if timer.losses else None,
        "last_loss": timer.losses[-1] if timer.losses else None,
        "build_seconds": build_s, "train_seconds": train_s,
    }
    if int(os.environ["RANK"]) == 0:
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
        print("GPU_CHECK " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
