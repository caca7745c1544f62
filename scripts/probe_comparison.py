#!/usr/bin/env python
"""How fast a small Llama trained from scratch learns the comparisons that POPE, MME and the
multiple-choice benchmarks ask for (the figures in docs/evaluation.md, "What the tiny model learns").

Clean-token versions of the tiny world's questions, one kind per run, in batches of 32:

- ``yesno``: the "image" is a colour token and a shape token; the question names a (colour,
  shape) and the answer is yes when both match (negatives differ in the colour, the shape or both,
  as POPE's do in the tiny world). Chance: 50%.
- ``letter``: the image is one colour; 2-4 lettered colour options follow, and the answer is the
  letter of the image's colour. Chance: ~35%.

``--image features`` replaces the image tokens by 8 noisy feature vectors (5 for the shape, 3 for
the background) passed through a trained two-layer projector, as LLaVA's image tokens are.
Prints held-out accuracy (512 questions) every 250 steps::

    python scripts/probe_comparison.py --task yesno --layers 2 --init-std 0.1
    python scripts/probe_comparison.py --task letter --layers 4 --init-std 0.2 --steps 2000
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

COLORS, SHAPES = range(1, 9), range(9, 13)
YES, NO, LETTERS = 13, 14, 15  # letters A-D are 15..18
VOCAB, IMAGE_AT, PATCHES = 70, 10, 8


def yesno(rng: random.Random, features: bool) -> tuple[list[int], int, int, int]:
    c, s = rng.choice(COLORS), rng.choice(SHAPES)
    if rng.random() < 0.5:
        qc, qs, y = c, s, YES
    else:
        mode = rng.choice("csb")
        qc = rng.choice([x for x in COLORS if x != c]) if mode in "cb" else c
        qs = rng.choice([x for x in SHAPES if x != s]) if mode in "sb" else s
        y = NO
    image = [0] * PATCHES if features else [c, s]
    seq = [20 + i for i in range(10)] + image + [40 + i for i in range(10)] + [30, 31, qc, qs, 32, 33]
    return seq + [50 + i for i in range(8)], y, c, s


def letter(rng: random.Random, features: bool) -> tuple[list[int], int, int, int]:
    _, s = rng.choice(COLORS), rng.choice(SHAPES)  # drawn as in yesno, so both tasks share one stream
    m = rng.choice((2, 3, 4, 4))
    colors, ans = rng.sample(COLORS, m), rng.randrange(m)
    image = [0] * PATCHES if features else [colors[ans], s]
    seq = [20 + i for i in range(10)] + image + [40 + i for i in range(10)]
    for i, c in enumerate(colors):
        seq += [LETTERS + i, 19, c, 60]
    return seq + [50 + i for i in range(8)], LETTERS + ans, colors[ans], s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("yesno", "letter"), default="yesno")
    ap.add_argument("--image", choices=("tokens", "features"), default="tokens")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--init-std", type=float, default=0.1, help="LlamaConfig.initializer_range")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--noise", type=float, default=0.3, help="feature noise (--image features)")
    args = ap.parse_args()
    if args.image == "features" and args.task != "yesno":
        ap.error("--image features needs --task yesno (its questions all have one length)")
    torch.set_num_threads(1)
    make = yesno if args.task == "yesno" else letter
    features = args.image == "features"
    table = torch.randn(VOCAB, 32, generator=torch.Generator().manual_seed(1))

    def batch(rng: random.Random, n: int):
        xs, ys, cs, ss = zip(*(make(rng, features) for _ in range(n)), strict=True)
        t = max(map(len, xs))
        ids = torch.zeros(n, t + 1, dtype=torch.long)
        labels = torch.full((n, t + 1), -100)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):  # right-aligned: the answer is at t
            ids[i, t - len(x):t], ids[i, t], labels[i, t] = torch.tensor(x), y, y
        feats = None
        if features:
            fg = (table[torch.tensor(cs)] + table[torch.tensor(ss)])[:, None, :].expand(n, 5, 32)
            bg = table[torch.randint(60, 64, (n,))][:, None, :].expand(n, PATCHES - 5, 32)
            feats = torch.cat([fg, bg], 1) + args.noise * torch.randn(n, PATCHES, 32)
        return ids, labels, t, ys, feats

    torch.manual_seed(0)
    rng = random.Random(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                         num_attention_heads=4, intermediate_size=2 * args.hidden,
                                         max_position_embeddings=128, initializer_range=args.init_std))
    projector = torch.nn.Sequential(torch.nn.Linear(32, args.hidden), torch.nn.GELU(),
                                    torch.nn.Linear(args.hidden, args.hidden))

    def forward(ids, labels, feats):
        if feats is None:
            return model(input_ids=ids, labels=labels)
        emb = model.get_input_embeddings()(ids)
        emb = torch.cat([emb[:, :IMAGE_AT], projector(feats), emb[:, IMAGE_AT + PATCHES:]], 1)
        return model(inputs_embeds=emb, labels=labels)

    params = list(model.parameters()) + (list(projector.parameters()) if features else [])
    opt = torch.optim.AdamW(params, args.lr)
    start = time.time()
    for step in range(1, args.steps + 1):
        ids, labels, _, _, feats = batch(rng, 32)
        loss = forward(ids, labels, feats).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 250 == 0:
            ids, _, t, ys, feats = batch(random.Random(99), 512)  # the same questions each time
            with torch.no_grad():
                pred = forward(ids, None, feats).logits[:, t - 1].argmax(-1).tolist()
            acc = sum(p == y for p, y in zip(pred, ys, strict=True)) / len(ys)
            print(f"step {step:5d}  loss {loss.item():.3f}  held-out accuracy {100 * acc:5.1f}%  "
                  f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
