#!/usr/bin/env python
"""One GPU script for the real path: token streams, text-only ZeRO-3 steps, precision, throughput.

Four checks, each printed and gathered in one machine-readable line ``GPU_CHECK {...json...}``:

1. ``token_streams``: Vicuna's real vocabulary (rebuilt from the npm package ``llama-tokenizer-js``,
   see tests/llama_vocab.py) in its legacy and ``legacy: false`` folder forms; this package's ids
   and labels must equal upstream's ``tokenizer_image_token`` / ``preprocess_v1`` /
   ``preprocess_plain`` streams for multi-turn, text-only and image-not-first records and for
   evaluation prompts. Needs ``$LLAMA_TOKENIZER_JS`` or ``.cache/llama-tokenizer-js`` (fetch it
   where npm works: ``python -c "import sys; sys.path.insert(0, 'tests'); import llama_vocab;
   llama_vocab.llama_js()"``; the device run copies ``.cache`` along).
2. ``precision``: greedy answers of a random 7B-shape model in fp32, bf16 and fp16, at batch 1 and
   batched (left padding), through the evaluation code (llava_core/evaluate/generate.py):
   agreement of each with its dtype's batch 1, and with fp32 batch 1.
3. ``text_only_zero3``: a few LLaVA steps at 7B shapes (``--shape 7b``, few layers) under DeepSpeed
   ZeRO-3 (``config/deepspeed/zero3.json``) in which some micro-batches have no image: under
   torchrun every odd rank gets text-only samples in every step, on one GPU the modality-grouped
   sampler gives whole text-only batches. Also checks that a text-only batch's loss is
   bit-identical with the blank-image path (training) and without it (eval mode).
4. ``throughput``: stage-2 steps (LLM + projector trained, vision frozen, bf16, gradient
   checkpointing, ZeRO-3) on random batches: tokens/s, peak memory and MFU.

    python scripts/gpu_check.py                          # one GPU, all checks (~5 minutes on an H100)
    torchrun --nproc_per_node 8 scripts/gpu_check.py     # one node (ZeRO-3 shards, ranks disagree on modality)
    python scripts/gpu_check.py --only throughput --shape 1b   # one check
    python scripts/gpu_check.py --cpu --tiny             # CPU smoke test of every check (~3 minutes)

MFU = (6 x trained parameters x tokens + 2 x vision parameters x patches) per second over the
GPU's dense bf16 peak (H100/H200 SXM 989e12, H100 PCIe 756e12, A100 312e12), summed over GPUs.
See docs/gpu_check.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECKS = ("token_streams", "precision", "text_only_zero3", "throughput")
COLLECTIVE_CHECKS = ("text_only_zero3", "throughput")  # run on every rank, with collectives (the others: rank 0)
# Llama widths: (hidden, intermediate, heads, default layers). 7b/13b are Vicuna-v1.5's widths with
# few layers (per-layer cost is what a 32/40-layer run repeats); 1b is the older throughput model.
SHAPES = {"7b": (4096, 11008, 32, 8), "13b": (5120, 13824, 40, 6), "1b": (2048, 5632, 16, 22)}
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
    p.add_argument("--shape", choices=sorted(SHAPES), default="7b",
                   help="LLM shape: 7b (Vicuna-7B widths) or 13b, with --layers of its layers; 1b: the older "
                        "1.2B throughput model")
    p.add_argument("--layers", type=int, default=None, help="Llama layers (default: 8 for 7b/13b, 22 for 1b)")
    p.add_argument("--only", action="append", choices=CHECKS, help="run only these checks (repeatable)")
    p.add_argument("--questions", type=int, default=24, help="questions of the precision check")
    p.add_argument("--eval-batch-size", type=int, default=8, help="the batched side of the precision check")
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
                           num_key_value_heads=4, vocab_size=32064, max_position_embeddings=1024)
        image_token = 32000
    else:
        # CLIP ViT-L/14 at 336 px (LLaVA-1.5's tower): 577 positions, 576 patch tokens after CLS drop.
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768,
                                  hidden_act="quick_gelu")
        hidden, intermediate, heads, layers = SHAPES[args.shape]
        text = LlamaConfig(hidden_size=hidden, intermediate_size=intermediate,
                           num_hidden_layers=args.layers or layers, num_attention_heads=heads,
                           num_key_value_heads=heads, vocab_size=32064, max_position_embeddings=4096,
                           rms_norm_eps=1e-5)
        image_token = 32000
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token,
                       projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default", multimodal_projector_bias=True,
                       image_seq_length=(vision.image_size // vision.patch_size) ** 2)


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


def build_model(cfg, device, dtype):
    """A random LLaVA whose body is the training one (blank image for text-only batches)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    sys.path.insert(0, str(ROOT))
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from llava_core.model.training_forward import BlankImageLlavaModel

    # A finished ZeRO-3 Trainer leaves its config registered, which would make transformers
    # partition this model at construction: each check builds a fresh, whole model.
    unset_hf_deepspeed_config()
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(cfg)
    with device:  # initialise on the GPU: random init of billions of parameters on a CPU takes minutes
        model.model = BlankImageLlavaModel._from_config(cfg, dtype=dtype)
        model.lm_head = torch.nn.Linear(cfg.text_config.hidden_size, cfg.text_config.vocab_size, bias=False,
                                        dtype=dtype)
    model.model.vision_tower.requires_grad_(False)  # stage 2: LLM and projector train
    return model


def trainer_arguments(args, out: str, on_gpu: bool, steps: int, **extra):
    """TrainingArguments of the stage-2 recipe (ZeRO-3 through config/deepspeed, bf16, checkpointing)."""
    from transformers import TrainingArguments

    sys.path.insert(0, str(ROOT))
    from llava_core.train.arguments import deepspeed_config

    ds_cfg = None if args.deepspeed == "none" else deepspeed_config(args.deepspeed)
    return TrainingArguments(
        output_dir=out, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        max_steps=steps, learning_rate=2e-5, warmup_steps=0, lr_scheduler_type="cosine", weight_decay=0.0,
        bf16=on_gpu, tf32=True if on_gpu else None, gradient_checkpointing=not args.no_gradient_checkpointing,
        deepspeed=ds_cfg, logging_steps=1, save_strategy="no", report_to="none", remove_unused_columns=False,
        dataloader_num_workers=0, use_cpu=not on_gpu, seed=0, disable_tqdm=True, **extra)


# ----------------------------------------------------------------------------- 1. token streams
STREAM_RECORDS = [
    ([("<image>\nWhat is the man doing?", "He is ironing clothes on the back of a taxi."),
      ("Is this unusual?", "Yes: people iron indoors.")], True),
    ([("What color is the car?\n<image>", "Red")], True),
    ([("<image>\nHow many dogs?", "2"), ("And cats?", "12")], True),
    ([("Write a haiku about café mornings.", "Steam curls from the cup,\nquiet street—\nthe day starts."),
      ("Translate 'hello' to Japanese.", "こんにちは")], False),
    ([("In LLaVA data, what does <image> mark?", "Where the picture goes.")], False),
]
STREAM_PROMPTS = ["What is in the image?\nAnswer the question using a single word or phrase.",
                  "Is there a dog in the image? Please answer yes or no.",
                  "Question: Which is bigger?\nOptions: A. sun B. moon\nAnswer with the option's letter from "
                  "the given choices directly.", "Describe this photo in detail."]


def check_token_streams(tmp: Path) -> dict:
    """This package's ids and labels against upstream's algorithm, both tokenizer-folder forms."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from llama_vocab import expand, original_ids, original_stream, raw_tokenizer, write_tokenizer_folder
    from transformers import AutoTokenizer

    from llava_core.data.conversation import Rendered, render, render_prompt
    from llava_core.data.tokenize import encode, make_tokenizer_for_llava

    sp = raw_tokenizer(legacy=True)
    out: dict = {}
    for form in ("legacy", "nonlegacy"):
        tok = make_tokenizer_for_llava(AutoTokenizer.from_pretrained(
            write_tokenizer_folder(tmp / form, legacy=form == "legacy")))
        checked, mismatched = 0, []
        for i, (pairs, has_image) in enumerate(STREAM_RECORDS):
            turns = [{"from": f, "value": v} for q, a in pairs for f, v in (("human", q), ("gpt", a))]
            for template in ("vicuna_v1", "plain") if has_image else ("vicuna_v1",):
                use = turns[:2] if template == "plain" else turns
                enc = encode(render(template, use, has_image=has_image), tok, max_length=10**6,
                             num_image_tokens=576, has_image=has_image)
                checked += 1
                if (enc.input_ids, enc.labels) != original_stream(template, use, has_image, sp, 32000):
                    mismatched.append(f"record {i} {template}")
        for j, q in enumerate(STREAM_PROMPTS):
            prompt = render_prompt("vicuna_v1", q, has_image=True)
            want, _ = expand(original_ids(prompt, sp), [0] * len(original_ids(prompt, sp)), 32000)
            checked += 1
            if encode(Rendered(prompt, []), tok, max_length=10**6, num_image_tokens=576).input_ids != want:
                mismatched.append(f"prompt {j}")
        out[form] = {"checked": checked, "mismatched": mismatched, "ok": not mismatched}
    out["ok"] = all(out[f]["ok"] for f in ("legacy", "nonlegacy"))
    return out


# ----------------------------------------------------------------------------- 2. text-only steps
class MixedModalityBatches:
    """Random samples, half of them text-only (every sample on an odd rank): ``n_image`` image tokens
    and a prompt first for image samples; ``modality_lengths`` for the modality-grouped sampler."""

    def __init__(self, cfg, seq_len: int, n: int, dtype, rank: int):
        v = cfg.vision_config
        self.n_image = (v.image_size // v.patch_size) ** 2
        self.cfg, self.seq_len, self.n, self.dtype, self.rank = cfg, seq_len, n, dtype, rank
        self.image_size = v.image_size

    def __len__(self):
        return self.n

    def has_image(self, i: int) -> bool:
        return self.rank % 2 == 0 and i < self.n // 2

    def modality_lengths(self) -> list[int]:
        return [self.seq_len if self.has_image(i) else -self.seq_len for i in range(self.n)]

    def __getitem__(self, i):
        import torch

        g = torch.Generator().manual_seed(1000 * self.rank + i)
        n_image = self.n_image if self.has_image(i) else 0
        text = torch.randint(3, self.cfg.image_token_index, (self.seq_len - n_image,), generator=g)
        ids = torch.cat([torch.full((n_image,), self.cfg.image_token_index), text])
        labels = ids.clone()
        labels[: n_image + 16] = -100
        pixels = torch.randn(3, self.image_size, self.image_size, generator=g).to(self.dtype) if n_image else None
        return {"input_ids": ids, "labels": labels, "pixel_values": pixels, "truncated": False}


def check_text_only_zero3(args, cfg, device, dtype, on_gpu: bool, world: int, rank: int, out: str) -> dict:
    """Steps in which micro-batches are text-only, under ZeRO-3 through llava-core's own Trainer."""
    import torch

    from llava_core.data.dataset import Collator
    from llava_core.train.runner import LlavaTrainer

    model = build_model(cfg, device, dtype)
    data = MixedModalityBatches(cfg, args.seq_len, n=4 * args.batch_size * world, dtype=dtype, rank=rank)
    collate = Collator(pad_token_id=0)
    text_batch = {k: v.to(device) if torch.is_tensor(v) else v
                  for k, v in collate([data[data.n - 1 - j] for j in range(min(2, data.n))]).items()}
    text_batch.pop("num_truncated")
    with torch.no_grad():  # the blank-image path must not change the loss, to the bit
        model.train()
        blank_loss = model(**text_batch).loss.item()
        model.eval()
        plain_loss = model(**text_batch).loss.item()
    model.train()
    if not args.no_gradient_checkpointing:
        model.enable_input_require_grads()
    steps = len(data) // (args.batch_size * world)
    targs = trainer_arguments(args, out, on_gpu, steps)
    trainer = LlavaTrainer(model=model, args=targs, train_dataset=data, data_collator=collate,
                           group_by_modality=True, loss_weighting="rank_mean")
    t0 = time.time()
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result = {"steps": trainer.state.global_step, "blank_image_batches": model.model.blank_image_batches,
              "losses": losses, "blank_loss": blank_loss, "plain_loss": plain_loss,
              "loss_bit_identical": blank_loss == plain_loss, "seconds": time.time() - t0,
              "mixed_ranks": world > 1}
    result["ok"] = (result["steps"] == steps and result["blank_image_batches"] > 0
                    and all(x == x for x in losses) and result["loss_bit_identical"])
    del trainer, model
    if on_gpu:
        torch.cuda.empty_cache()
    return result


# ----------------------------------------------------------------------------- 3. precision
def check_precision(args, cfg, device, tmp: Path) -> dict:
    """Answer agreement, batch 1 vs batched, in fp32/bf16/fp16, through the evaluation code."""
    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tests"))
    from llama_vocab import write_tokenizer_folder
    from transformers import AutoTokenizer

    from llava_core.data.images import image_processor_class
    from llava_core.data.tokenize import make_tokenizer_for_llava
    from llava_core.evaluate.benchmarks.base import EvalQuestion
    from llava_core.evaluate.generate import generate_answers
    from llava_core.model.build import LlavaParts

    tok = make_tokenizer_for_llava(AutoTokenizer.from_pretrained(write_tokenizer_folder(tmp / "tok", legacy=False)))
    size = cfg.vision_config.image_size
    processor = image_processor_class()(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    rng = np.random.default_rng(0)
    questions = []
    for i in range(args.questions):
        path = tmp / f"q{i}.png"
        Image.fromarray(rng.integers(0, 256, (size + 7 * i % 50, size, 3), dtype=np.uint8)).save(path)
        text = STREAM_PROMPTS[i % len(STREAM_PROMPTS)] + " " * (i % 3) + "word " * (i % 7)
        questions.append(EvalQuestion(i, text, str(path), 32))
    torch.manual_seed(0)
    model = build_model(cfg, device, torch.float32).eval()
    answers: dict[str, list[str]] = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        model.to(dt)
        parts = LlavaParts(model, tok, processor)
        for bs in (1, args.eval_batch_size):
            rows = generate_answers(parts, questions, template="vicuna_v1", aspect="pad", batch_size=bs,
                                    max_new_tokens=None, model_id="gpu-check", progress=False)
            answers[f"{name}/bs{bs}"] = [r["text"] for r in rows]
    ref = answers["fp32/bs1"]
    result: dict = {"questions": len(questions), "max_new_tokens": 32, "batched": args.eval_batch_size}
    for key, texts in answers.items():
        name = key.split("/")[0]
        result[key] = {"agree_with_own_bs1": float(np.mean([a == b for a, b in zip(texts, answers[f"{name}/bs1"],
                                                                                     strict=True)])),
                       "agree_with_fp32_bs1": float(np.mean([a == b for a, b in zip(texts, ref, strict=True)]))}
    result["ok"] = result[f"fp32/bs{args.eval_batch_size}"]["agree_with_own_bs1"] == 1.0
    del model
    return result


# ----------------------------------------------------------------------------- 4. throughput
def check_throughput(args, cfg, device, dtype, on_gpu: bool, world: int, out: str) -> dict:
    """Stage-2 steps on random batches: tokens/s, peak memory, MFU."""
    import torch
    from transformers import Trainer, TrainerCallback

    t0 = time.time()
    model = build_model(cfg, device, dtype)
    n_vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    n_trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())  # before ZeRO-3 partitions them
    build_s = time.time() - t0
    targs = trainer_arguments(args, out, on_gpu, args.steps)
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
        return {"ok": False, "error": f"too few steps to time: {len(timer.marks)} steps, {args.warmup_steps} warm-up"}
    step_s = (timed[-1] - timed[0]) / steps
    tokens_per_step = args.batch_size * args.seq_len * world
    images_per_step = args.batch_size * world
    tok_s = tokens_per_step / step_s
    flops_per_step = 6 * n_trained * tokens_per_step + 2 * n_vision * (data.n_image + 1) * images_per_step
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    peak = peak_flops(name) if on_gpu else None
    return {
        "device": name, "world_size": world, "deepspeed": args.deepspeed, "dtype": str(dtype).split(".")[-1],
        "shape": "tiny" if args.tiny else args.shape, "layers": cfg.text_config.num_hidden_layers,
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
        "build_seconds": build_s, "train_seconds": train_s, "ok": bool(timer.losses),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tiny:
        args.seq_len = min(args.seq_len, 96)
        args.batch_size = min(args.batch_size, 4)
        args.steps = min(args.steps, 6)
        args.warmup_steps = min(args.warmup_steps, 2)
        args.questions = min(args.questions, 8)
        args.eval_batch_size = min(args.eval_batch_size, 4)
    checks = args.only or list(CHECKS)
    # One process without torchrun: DeepSpeed needs a rendezvous (else it looks for MPI).
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29511")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.cpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    sys.path.insert(0, str(ROOT))

    import tempfile

    import torch

    on_gpu = torch.cuda.is_available() and not args.cpu
    if not on_gpu and not args.cpu:
        print("no GPU found: rerun with --cpu (add --tiny for a quick smoke test)", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if on_gpu else torch.float32
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    cfg = build_config(args)
    torch.manual_seed(0)
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.cuda.set_device(device)
    out = args.out or tempfile.mkdtemp(prefix="gpu_check-")
    tmp = Path(out)
    results: dict = {"checks": checks, "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
                     "world_size": world}
    for check in checks:
        t0 = time.time()
        try:
            if check == "token_streams":
                results[check] = check_token_streams(tmp / "tokens") if rank == 0 else {"ok": True, "rank": rank}
            elif check == "text_only_zero3":
                results[check] = check_text_only_zero3(args, cfg, device, dtype, on_gpu, world, rank,
                                                       str(tmp / "text_only"))
            elif check == "precision":
                results[check] = check_precision(args, cfg, device, tmp / "precision") if rank == 0 else {"ok": True}
            else:
                results[check] = check_throughput(args, cfg, device, dtype, on_gpu, world, str(tmp / "throughput"))
        except Exception as e:  # one failed check must not hide the others' figures
            import traceback

            traceback.print_exc()
            results[check] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        results[check]["check_seconds"] = time.time() - t0
        if rank == 0:
            print(f"== {check}: {'ok' if results[check].get('ok') else 'FAILED'}", flush=True)
            for k, v in results[check].items():
                print(f"   {k:<28} {v:.4g}" if isinstance(v, float) else f"   {k:<28} {v}")
    results["ok"] = all(results[c].get("ok") for c in checks)
    if rank == 0:
        print("GPU_CHECK " + json.dumps(results, default=str))
    # Under torchrun: close the group on every rank once the checks that run collectives (on every
    # rank) succeeded; never after one failed, when a peer may still be inside a collective.
    if all(results[c].get("ok") for c in checks if c in COLLECTIVE_CHECKS):
        from llava_core.train.distributed import finish_process_group

        finish_process_group()
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
