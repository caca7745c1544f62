"""The whole tiny world in one call: both training sets, the 12 eval sets and the tokenizer corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from llava_core.data.formats import IMAGE_TOKEN
from llava_core.evalkit import CHANCE_FILE
from llava_core.io import atomic_dir, atomic_write, write_json
from llava_core.synthetic import training
from llava_core.synthetic.benchmarks import (
    gqa,
    llava_bench,
    mm_vet,
    mmbench,
    mme,
    pope,
    scienceqa,
    seed_bench,
    textvqa,
    vizwiz,
    vqav2,
)
from llava_core.synthetic.benchmarks.common import SMALL_EVAL, Written
from llava_core.synthetic.instruct_sources import CAPTIONS_JSON, write_instruct_sources
from llava_core.synthetic.scenes import COLORS, SHAPES

SYSTEM_PROMPT = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")
#: The world's folders, each replaced atomically (and each a part of the mirror); INSTRUCT holds
#: what a teacher regenerating LLaVA-Instruct reads (captions, boxes, prompt files).
PRETRAIN, FINETUNE, EVAL, INSTRUCT = "pretrain", "finetune", "eval", "instruct"


def _record_texts(records: list[dict]) -> list[str]:
    return [t["value"].replace(IMAGE_TOKEN, "").strip() for r in records for t in r["conversations"]]


def generate_world(out_dir: Path, *, seed: int = 0, image_size: int = 32, n_pretrain: int = 2000,
                   n_finetune: int = 3000, n_eval: int = 200, records_per_image: int = 1) -> dict:
    """Write the tiny world under ``out_dir`` (``pretrain/``, ``finetune/``, ``eval/``, ``instruct/``, ``corpus.txt``).

    Same ``seed`` gives byte-identical files. ``n_eval`` is the number of questions of GQA, POPE
    (per category, rounded down to even) and ScienceQA; the other nine benchmarks get small sets of
    ``min(n_eval, SMALL_EVAL)`` questions (MMBench/MMBench-CN, MM-Vet: half as many base questions;
    LLaVA-Bench: 3 per image, a sixth as many images). Each of the three folders is replaced
    atomically. Each stage-2 image serves ``records_per_image`` records. Returns ``{"seed",
    "image_size", "counts": {file: n}, "finetune_kinds", "corpus"}``, where ``corpus`` holds every distinct text (``<image>`` removed) for training a tokenizer.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir / PRETRAIN) as tmp:
        pre_records, pre_scenes = training.write_pretrain(tmp, seed, image_size, n_pretrain)
    with atomic_dir(out_dir / FINETUNE) as tmp:
        ft_records, ft_scenes, kinds = training.write_finetune(tmp, seed, image_size, n_finetune,
                                                                records_per_image)
    with atomic_dir(out_dir / INSTRUCT) as tmp:
        instruct_counts = write_instruct_sources(tmp, ft_scenes, image_size)
    freq = Counter((s.color, s.shape) for s in pre_scenes + list(ft_scenes.values()))
    popular = sorted(((c, x) for c in COLORS for x in SHAPES), key=lambda p: (-freq[p], p))
    with atomic_dir(out_dir / EVAL) as tmp:
        m = min(n_eval, SMALL_EVAL)
        written: list[Written] = [
            gqa.write(tmp, seed, image_size, n_eval),
            pope.write(tmp, seed, image_size, n_eval, popular),
            scienceqa.write(tmp, seed, image_size, n_eval),
            vqav2.write(tmp, seed, image_size, m),
            vizwiz.write(tmp, seed, image_size, m),
            textvqa.write(tmp, seed, image_size, m),
            mme.write(tmp, seed, image_size, m),
            mmbench.write(tmp, seed, image_size, m // 2),
            mmbench.write(tmp, seed, image_size, m // 2, chinese=True),
            seed_bench.write(tmp, seed, image_size, m),
            llava_bench.write(tmp, seed, image_size, max(1, m // 6)),
            mm_vet.write(tmp, seed, image_size, m // 2),
        ]
        # Each writer's chance level, for the report's chance column (Benchmark.chance_level reads it).
        write_json(tmp / CHANCE_FILE, {w.benchmark: round(w.chance, 4) for w in written})
    gqa_rows, pope_rows, sqa_rows = (w.rows for w in written[:3])

    texts = [SYSTEM_PROMPT, "USER", "ASSISTANT"]
    texts += _record_texts(pre_records) + _record_texts(ft_records)
    texts += [q["text"] for q in gqa_rows["questions"] + pope_rows["questions"]]
    texts += [t["answer"] for t in gqa_rows["ground_truth"].values()]
    texts += ["yes", "no", "Yes", "No"] + _record_texts(sqa_rows["questions"])
    corpus = list(dict.fromkeys(t for t in texts if t))
    with atomic_write(out_dir / "corpus.txt") as fh:
        fh.write("\n".join(corpus) + "\n")

    counts = {f"{PRETRAIN}/{training.PRETRAIN_JSON}": len(pre_records),
              f"{FINETUNE}/{training.FINETUNE_JSON}": len(ft_records)}
    counts.update({f"{EVAL}/{rel}": n for w in written for rel, n in w.counts.items()})
    counts[f"{INSTRUCT}/{CAPTIONS_JSON}"] = instruct_counts["captions"]
    return {"seed": seed, "image_size": image_size, "counts": counts,
            "finetune_kinds": dict(sorted(kinds.items())), "corpus": corpus}
