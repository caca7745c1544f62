#!/usr/bin/env python
"""Record filter throughput and memory on a synthetic mix665k-shaped corpus, checked against planted damage.

Generates (deterministically) a LLaVA records JSON list in the released mix665k layout: COCO,
GQA, OCR-VQA, TextVQA and VG image records, several per image, multi-turn human/gpt, about 5%
ShareGPT-style text-only records, and tiny valid JPEGs. Planted damage: missing, empty, truncated
and corrupt images (fractions of the distinct images), exact duplicate records and a few malformed
records. Then, each in a fresh process so its peak memory is its own:

* ``filter_records`` with ``--workers``: wall time, records/s, images/s, peak RSS of the main
  process and of the largest pool worker; the manifest's counts must equal the planted ones
  (exit status 1 otherwise, so the script doubles as an end-to-end check);
* the same filter with ``check_images=False`` (the two streaming JSON passes and dedupe only);
* loading the filtered file the way training did before the Arrow training index:
  ``read_llava_records`` + ``SupervisedDataset`` + ``modality_lengths()`` + one epoch of the
  modality-grouped sampler (``scripts/bench_index.py`` compares it with the Arrow index).

Generation time is reported separately. Image files are freshly written, so they are read from the
page cache (a warm-cache figure: on a cold network filesystem image reads cost more)::

    python scripts/bench_filter.py                      # 200K records, 40K images, os.cpu_count() workers
    python scripts/bench_filter.py --workers 1 --json /tmp/filter-1.json
    python scripts/bench_filter.py --records 20000 --images 4000 --keep --workdir /tmp/bf
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

WORDS = (
    "man woman person people dog cat horse bus car truck train plane boat bird cow sheep table chair "
    "bed sofa kitchen street road sign building window door tree grass sky water beach snow field "
    "plate pizza sandwich cake banana apple orange bowl cup bottle phone laptop keyboard book clock "
    "umbrella kite bench fence wall floor shirt hat jacket ball bat racket skateboard surfboard "
    "red blue green white black yellow brown gray small large tall old young wooden metal open "
    "sitting standing holding riding walking looking playing eating wearing parked near behind "
    "left right front top bottom middle side background foreground many two three several").split()
VQA_STEMS = ("What color is the", "Is there a", "How many", "What is the man holding near the",
             "Which side is the", "Is the", "What is on top of the", "Are there any", "What kind of",
             "Who is wearing the", "Where is the", "What is the woman doing with the")
SHORT = "\nAnswer the question using a single word or phrase."
OCR_QS = ("Who wrote this book?", "What is the title of this book?", "What type of book is this?",
          "Is this a comedy book?", "Is this a sci-fi book?", "Is this book related to History?",
          "Is this a religious book?", "Is this a pharmaceutical book?")
DETAIL_QS = ("Describe the image concisely.", "What do you see happening in this image?",
             "Can you elaborate on the elements of the picture provided?",
             "What are the key elements in this picture?", "Explain the visual content of the image in great detail.")
REF_Q = "Please provide the bounding box coordinate of the region this sentence describes: "
# (source, share of the distinct images); mix665k's image counts are of this order.
SOURCES = (("coco", 0.30), ("gqa", 0.19), ("ocr_vqa", 0.21), ("textvqa", 0.07), ("vg", 0.23))
DAMAGE = ("missing", "empty", "truncated", "corrupt")


# -- corpus generation ---------------------------------------------------------------------------

def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def _image_path(source: str, i: int, rng: random.Random) -> str:
    if source == "coco":
        return f"coco/train2017/{i:012d}.jpg"
    if source == "gqa":
        return f"gqa/images/{2300000 + i}.jpg"
    if source == "ocr_vqa":
        return f"ocr_vqa/images/{1000000000 + 7919 * i}.jpg"
    if source == "textvqa":
        return f"textvqa/train_images/{(i * 2654435761) & 0xFFFFFFFFFFFF:012x}{i:04x}.jpg"
    return f"vg/{'VG_100K' if rng.random() < 0.7 else 'VG_100K_2'}/{i + 1}.jpg"


def _with_image_token(q: str, rng: random.Random) -> str:
    return f"<image>\n{q}" if rng.random() < 0.9 else f"{q}\n<image>"


def _pairs_to_conv(pairs: list[tuple[str, str]], rng: random.Random, image: bool) -> list[dict]:
    conv = []
    for k, (q, a) in enumerate(pairs):
        conv.append({"from": "human", "value": _with_image_token(q, rng) if image and k == 0 else q})
        conv.append({"from": "gpt", "value": a})
    return conv


def _conversation(source: str | None, rng: random.Random) -> list[dict]:
    """A multi-turn conversation in the style of ``source``'s records (None: ShareGPT text-only)."""
    if source is None:
        pairs = [(_words(rng, 8, 80) + "?", _words(rng, 60, 400) + ".") for _ in range(rng.randint(1, 6))]
        return _pairs_to_conv(pairs, rng, image=False)
    if source == "coco" and rng.random() < 0.5:  # LLaVA-Instruct: few turns, long answers
        first = rng.choice(DETAIL_QS) if rng.random() < 0.4 else f"{rng.choice(VQA_STEMS)} {_words(rng, 2, 6)}?"
        pairs = [(first, _words(rng, 40, 200) + ".")]
        pairs += [(f"{rng.choice(VQA_STEMS)} {_words(rng, 2, 8)}?", _words(rng, 20, 120) + ".")
                  for _ in range(rng.randint(0, 5))]
    elif source == "ocr_vqa":
        pairs = [(q, _words(rng, 1, 4) if "?" in q and not q.startswith("Is") else rng.choice(("Yes", "No")))
                 for q in rng.sample(OCR_QS, rng.randint(2, len(OCR_QS)))]
    elif source == "textvqa":
        pairs = [(f"{rng.choice(VQA_STEMS)} {_words(rng, 2, 6)}?\nReference OCR token: {_words(rng, 1, 8)}{SHORT}",
                  _words(rng, 1, 3))]
    elif source == "vg":  # RefCOCO/VG-style region questions
        pairs = [(REF_Q + _words(rng, 2, 8) + ".",
                  "[" + ", ".join(f"{rng.random():.2f}" for _ in range(4)) + "]") for _ in range(rng.randint(1, 8))]
    else:  # VQAv2 / GQA: many short questions about one image
        pairs = [(f"{rng.choice(VQA_STEMS)} {_words(rng, 2, 7)}?{SHORT if k == 0 else ''}", _words(rng, 1, 3))
                 for k in range(rng.randint(1, 14))]
    return _pairs_to_conv(pairs, rng, image=True)


def _jpeg_templates(seed: int, n: int = 64, size: int = 32) -> list[bytes]:
    import numpy as np
    from PIL import Image

    g = np.random.default_rng(seed)
    out = []
    for k in range(n):
        base = g.integers(0, 256, 3)
        ramp = np.linspace(0, g.integers(0, 120), size)[None, :, None] * g.choice([-1, 1], 3)
        noise = g.normal(0, g.choice([2, 10, 30, 60]), (size, size, 3))
        pixels = np.clip(base + ramp + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=int(60 + 35 * k / n))
        out.append(buf.getvalue())
    return out


def _with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI: distinct bytes per file, identical pixels."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def _truncate(jpeg: bytes) -> bytes:
    """Cut a JPEG in the middle of its entropy-coded data, as an interrupted download does."""
    sos = jpeg.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")
    return jpeg[:start + (len(jpeg) - 2 - start) // 2]


def _malformed(images: list[str], n: int) -> list:
    conv = [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A cat."}]
    shapes = [
        {"id": "malformed-empty-conv", "image": images[0], "conversations": []},
        {"id": "malformed-starts-gpt", "image": images[1 % len(images)], "conversations": conv[::-1]},
        {"id": "malformed-image-int", "image": 12345, "conversations": conv},
        "a bare string where a record belongs",
        {"id": "malformed-null-value", "conversations": [{"from": "human", "value": None}]},
        {"id": "malformed-no-conv", "image": images[2 % len(images)]},
        {"id": "malformed-conv-dict", "conversations": {"from": "human", "value": "hi"}},
    ]
    return [shapes[k % len(shapes)] for k in range(n)]


def generate(root: Path, args: argparse.Namespace) -> dict:
    """Write ``root/records.json`` and ``root/images``; return what was planted (per reason, in records)."""
    from llava_core.prepare.filter import CORRUPT, DUPLICATE, EMPTY, MALFORMED, MISSING, TRUNCATED

    reason_of = {"missing": MISSING, "empty": EMPTY, "truncated": TRUNCATED, "corrupt": CORRUPT}
    rng = random.Random(args.seed)
    n_dup = round(args.duplicates * args.records)
    n_base = args.records - n_dup - args.malformed
    n_text = round(args.text_only * n_base)
    n_img_recs = n_base - n_text
    if n_img_recs < args.images:
        raise SystemExit(f"--records too small: {n_img_recs} image records for {args.images} images")

    # Distinct images, by source, and which of them are damaged.
    names = [s for s, _ in SOURCES]
    sources = rng.choices(names, weights=[w for _, w in SOURCES], k=args.images)
    images = [_image_path(src, i, rng) for i, src in enumerate(sources)]
    counts = {kind: max(1, round(getattr(args, kind) * args.images)) for kind in DAMAGE}
    picked = rng.sample(range(args.images), sum(counts.values()))
    damage: dict[int, str] = {}
    for kind in DAMAGE:
        damage.update((i, kind) for i in picked[:counts[kind]])
        picked = picked[counts[kind]:]

    # Base records: every image at least once, the rest spread at random; text-only mixed in; shuffled.
    owners: list[int | None] = list(range(args.images)) + rng.choices(range(args.images), k=n_img_recs - args.images)
    owners += [None] * n_text
    rng.shuffle(owners)
    seen: set[str] = set()
    base = []
    for k, img in enumerate(owners):
        while True:  # no accidental duplicates: only the planted ones
            conv = _conversation(None if img is None else sources[img], rng)
            key = json.dumps([None if img is None else images[img], conv])
            if key not in seen:
                seen.add(key)
                break
        rec = {"id": f"{k:07d}"}
        if img is not None:
            rec["image"] = images[img]
        rec["conversations"] = conv
        base.append(rec)
    del seen

    # Duplicates go somewhere after their original; malformed records anywhere.
    after: dict[int, list] = {}
    for src in rng.choices(range(n_base), k=n_dup):
        after.setdefault(rng.randint(src, n_base - 1), []).append(("dup", src))
    malformed = _malformed(images, args.malformed)
    for m in malformed:
        after.setdefault(rng.randrange(n_base), []).append(("malformed", m))

    expected: Counter[str] = Counter()
    image_index = {p: i for i, p in enumerate(images)}
    records_path = root / "records.json"
    with open(records_path, "w", encoding="utf-8") as fh:
        fh.write("[")
        first = True
        for pos in range(n_base):
            for tag, item in [("base", pos)] + after.get(pos, []):
                if tag == "malformed":
                    out, why = item, MALFORMED
                else:
                    out = base[item]
                    img = image_index.get(out.get("image"))
                    why = reason_of[damage[img]] if img in damage else (DUPLICATE if tag == "dup" else None)
                expected[why or "kept"] += 1
                fh.write(("" if first else ", ") + json.dumps(out, ensure_ascii=False))
                first = False
        fh.write("]\n")
    del base, after

    # Image files: a few encoded templates, each file made distinct by a comment segment.
    templates = _jpeg_templates(args.seed, size=args.image_size)
    for d in {os.path.dirname(p) for p in images}:
        (root / "images" / d).mkdir(parents=True, exist_ok=True)
    html = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
    for i, rel in enumerate(images):
        kind = damage.get(i)
        if kind == "missing":
            continue
        data = _with_comment(templates[i % len(templates)], f"bench_filter {i}")
        if kind == "empty":
            data = b""
        elif kind == "truncated":
            data = _truncate(data)
        elif kind == "corrupt":  # a saved error page, or random bytes
            data = html if i % 2 else bytes(rng.getrandbits(8) for _ in range(600))
        with open(root / "images" / rel, "wb") as fh:
            fh.write(data)

    planted_images = {reason_of[k]: v for k, v in counts.items()}
    return {"records": args.records, "distinct_images": args.images, "text_only_records": n_text,
            "planted_duplicate_records": n_dup, "planted_malformed_records": args.malformed,
            "planted_damaged_images": planted_images, "expected": dict(sorted(expected.items()))}


# -- measured steps, each run in a fresh process --------------------------------------------------

def _maxrss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def _task_filter(records: str, image_root: str, out: str, workers: int, check_images: bool) -> dict:
    from llava_core.prepare.filter import filter_records

    rss0 = _maxrss_mb(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    manifest = filter_records(Path(records), Path(image_root), Path(out), workers=workers,
                              check_images=check_images, progress=False)
    return {"seconds": time.perf_counter() - t0, "manifest": manifest, "rss_after_imports_mb": rss0}


def _task_index(records: str, image_root: str, per_device_batch: int, world_size: int, grad_accum: int,
                seed: int) -> dict:
    from llava_core.data.dataset import SupervisedDataset
    from llava_core.data.formats import read_llava_records
    from llava_core.train.sampler import ModalityLengthSampler

    rss0 = _maxrss_mb(resource.RUSAGE_SELF)
    t = [time.perf_counter()]
    recs = read_llava_records(records)
    t.append(time.perf_counter())
    ds = SupervisedDataset(recs, image_root, template="vicuna_v1", aspect="pad", tokenizer=None,
                           image_processor=None, num_image_tokens=576, max_length=2048)
    lengths = ds.modality_lengths()
    t.append(time.perf_counter())
    sampler = ModalityLengthSampler(lengths, per_device_batch=per_device_batch, world_size=world_size,
                                    grad_accum=grad_accum, seed=seed)
    sampler.set_epoch(0)
    order = list(sampler)
    t.append(time.perf_counter())
    return {"records": len(ds), "read_s": t[1] - t[0], "lengths_s": t[2] - t[1], "sampler_s": t[3] - t[2],
            "seconds": t[3] - t[0], "order_is_permutation": sorted(order) == list(range(len(ds))),
            "text_only": sum(x < 0 for x in lengths), "rss_after_imports_mb": rss0}


def _task_generate(root: str, options: dict) -> dict:
    t0 = time.perf_counter()
    planted = generate(Path(root), argparse.Namespace(**options))
    return {"planted": planted, "seconds": time.perf_counter() - t0}


TASKS = {"generate": _task_generate, "filter": _task_filter, "index": _task_index}


def _child(conn, task: str, kwargs: dict) -> None:
    try:
        out = TASKS[task](**kwargs)
        out["peak_rss_main_mb"] = _maxrss_mb(resource.RUSAGE_SELF)
        out["peak_rss_worker_mb"] = _maxrss_mb(resource.RUSAGE_CHILDREN)  # max over reaped children
        conn.send(("ok", out))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_fresh(task: str, **kwargs) -> dict:
    """Run ``TASKS[task](**kwargs)`` in a freshly spawned interpreter; its result plus peak RSS figures.

    Linux carries a process's peak RSS across fork+exec, so a child's ``ru_maxrss`` starts at this
    (parent) process's RSS: the parent therefore never holds the corpus (generation is a task too).
    """
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, task, kwargs))
    proc.start()
    send.close()
    try:
        status, out = recv.recv()
    except EOFError:
        proc.join()
        status, out = "error", f"the {task} process died (exit code {proc.exitcode})"
    proc.join()
    if status != "ok":
        raise SystemExit(f"{task} failed:\n{out}")
    return out


# -- report ----------------------------------------------------------------------------------------

def _table(rows: list[tuple[str, str]], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---:|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=200_000, help="records in the corpus (default 200000)")
    p.add_argument("--images", type=int, default=40_000, help="distinct images referenced (default 40000)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="filter pool size (default: os.cpu_count())")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=32,
                   help="side of the JPEGs in pixels (default 32: JSON-bound; 384 approaches COCO's image-check cost)")
    p.add_argument("--text-only", type=float, default=0.05, help="share of text-only records")
    for kind, default in zip(DAMAGE, (0.005, 0.002, 0.002, 0.001), strict=True):
        p.add_argument(f"--{kind}", type=float, default=default, help=f"share of distinct images {kind} (default {default})")
    p.add_argument("--duplicates", type=float, default=0.005, help="share of records that are exact duplicates")
    p.add_argument("--malformed", type=int, default=7, help="malformed records planted")
    p.add_argument("--per-device-batch", type=int, default=16, help="sampler: per-device batch (LLaVA-1.5 finetune: 16)")
    p.add_argument("--world-size", type=int, default=8, help="sampler: ranks (LLaVA-1.5: 8 GPUs)")
    p.add_argument("--grad-accum", type=int, default=1, help="sampler: gradient accumulation steps")
    p.add_argument("--no-json-only", action="store_true", help="skip the check_images=False filter run")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the corpus goes (in a bench_filter/ folder; default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the corpus; a later run with the same workdir "
                   "and generation options reuses it")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures to PATH")
    args = p.parse_args(argv)

    if args.workdir is None:
        top = Path(tempfile.mkdtemp(prefix="bench_filter-"))
        root, cleanup = top, top
    else:
        root = args.workdir / "bench_filter"
        cleanup = root
    gen_opts = {k: getattr(args, k) for k in
                ("records", "images", "image_size", "seed", "text_only", *DAMAGE, "duplicates", "malformed")}
    stamp = root / "corpus.json"
    try:
        if stamp.exists() and json.loads(stamp.read_text()).get("options") == gen_opts:
            planted, gen_s = json.loads(stamp.read_text())["planted"], None
            print(f"reusing the corpus in {root}", file=sys.stderr)
        else:
            if root.exists() and args.workdir is not None:
                shutil.rmtree(root)
            root.mkdir(parents=True, exist_ok=True)
            print(f"generating {args.records} records, {args.images} images in {root} ...", file=sys.stderr)
            gen = run_fresh("generate", root=str(root), options=gen_opts)
            planted, gen_s = gen["planted"], gen["seconds"]
            stamp.write_text(json.dumps({"options": gen_opts, "planted": planted}))
        records, image_root, out_dir = root / "records.json", root / "images", root / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        json_mb = records.stat().st_size / 1e6

        print(f"filtering with {args.workers} worker(s) ...", file=sys.stderr)
        filt = run_fresh("filter", records=str(records), image_root=str(image_root),
                         out=str(out_dir / "filtered.json"), workers=args.workers, check_images=True)
        man = filt["manifest"]
        json_only = None
        if not args.no_json_only:
            print("filtering with check_images=False ...", file=sys.stderr)
            json_only = run_fresh("filter", records=str(records), image_root=str(image_root),
                                  out=str(out_dir / "json_only.json"), workers=args.workers, check_images=False)
        print("building the training index ...", file=sys.stderr)
        idx = run_fresh("index", records=str(out_dir / "filtered.json"), image_root=str(image_root),
                        per_device_batch=args.per_device_batch, world_size=args.world_size,
                        grad_accum=args.grad_accum, seed=args.seed)
        with open(man["dropped_list"], encoding="utf-8") as fh:
            dropped_lines = sum(1 for _ in fh)
    finally:
        if not args.keep:
            shutil.rmtree(cleanup, ignore_errors=True)

    # Planted vs found.
    expected = planted["expected"]
    found = dict(man["reasons"], kept=man["kept"])
    check_rows = [(k, expected.get(k, 0), found.get(k, 0)) for k in sorted(set(expected) | set(found))]
    check_rows += [("(records read)", planted["records"], man["records"]),
                   ("(distinct images)", planted["distinct_images"], man["images"]["distinct"]),
                   ("(unusable images)", sum(planted["planted_damaged_images"].values()), man["images"]["unusable"]),
                   ("(lines in .dropped.jsonl)", man["dropped"], dropped_lines),
                   ("(records in training index)", man["kept"], idx["records"])]
    mismatches = [r for r in check_rows if r[1] != r[2]]
    ok = not mismatches and idx["order_is_permutation"]

    n_rec, n_img, secs = man["records"], man["images"]["distinct"], filt["seconds"]
    fig = {
        "machine": {"os_cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                    "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "platform": platform.platform(terse=True),
                    "bench_parent_peak_rss_mb": round(_maxrss_mb(resource.RUSAGE_SELF))},
        "corpus": {**gen_opts, "json_mb": round(json_mb, 1), "generation_s": None if gen_s is None else round(gen_s, 1),
                   "planted_damaged_images": planted["planted_damaged_images"],
                   "text_only_records": planted["text_only_records"]},
        "filter": {"workers": args.workers, "seconds": round(secs, 2), "records_per_s": round(n_rec / secs),
                   "images_per_s": round(n_img / secs), "peak_rss_main_mb": round(filt["peak_rss_main_mb"]),
                   "peak_rss_worker_mb": round(filt["peak_rss_worker_mb"]) if args.workers > 1 else None,
                   "rss_after_imports_mb": round(filt["rss_after_imports_mb"]),
                   "kept": man["kept"], "reasons": man["reasons"]},
        "index": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in idx.items()},
        "planted_vs_found": {k: {"planted": a, "found": b} for k, a, b in check_rows},
        "ok": ok,
    }
    fig["index"]["records_per_s"] = round(idx["records"] / idx["seconds"])
    if json_only is not None:
        js = json_only["seconds"]
        fig["filter_json_only"] = {"seconds": round(js, 2), "records_per_s": round(n_rec / js),
                                   "peak_rss_main_mb": round(json_only["peak_rss_main_mb"])}
        if secs > js:
            fig["filter"]["image_check_images_per_s_derived"] = round(n_img / (secs - js))

    m = fig["machine"]
    print(f"\nMachine: {m['os_cpu_count']} CPUs (os.cpu_count; {m['usable_cpus']} usable), {m['cpu']}, "
          f"Python {m['python']}, {m['platform']}")
    print(f"(peak RSS = ru_maxrss of a fresh process; Linux carries the launcher's peak, "
          f"{m['bench_parent_peak_rss_mb']} MB, across fork+exec, so that is the floor)")
    gen_txt = "reused" if gen_s is None else f"{gen_s:.1f} s (not counted)"
    print(f"Corpus: {n_rec:,} records ({planted['text_only_records']:,} text-only), {n_img:,} distinct images, "
          f"records JSON {json_mb:.1f} MB; generation {gen_txt}\n")
    rows = [
        ("machine", f"{m['os_cpu_count']} CPUs, Python {m['python']}"),
        ("corpus", f"{n_rec:,} records, {n_img:,} distinct images, {json_mb:.0f} MB JSON"),
        ("filter workers", str(args.workers)),
        ("filter wall time", f"{secs:.1f} s"),
        ("filter records/s", f"{n_rec / secs:,.0f}"),
        ("filter images/s (distinct images / wall time)", f"{n_img / secs:,.0f}"),
    ]
    if json_only is not None:
        rows.append(("JSON passes only (check_images=False)", f"{json_only['seconds']:.1f} s "
                     f"({n_rec / json_only['seconds']:,.0f} records/s)"))
        if "image_check_images_per_s_derived" in fig["filter"]:
            rows.append(("image check alone, derived (images / (wall - JSON-only))",
                         f"{fig['filter']['image_check_images_per_s_derived']:,} images/s"))
    rows += [
        ("filter peak RSS, main process", f"{filt['peak_rss_main_mb']:.0f} MB "
         f"({filt['rss_after_imports_mb']:.0f} MB after imports)"),
        ("filter peak RSS, largest pool worker",
         f"{filt['peak_rss_worker_mb']:.0f} MB" if args.workers > 1 else "- (no pool)"),
        ("training index: read_llava_records", f"{idx['read_s']:.1f} s"),
        ("training index: SupervisedDataset + modality_lengths", f"{idx['lengths_s']:.2f} s"),
        (f"training index: modality sampler, 1 epoch (batch {args.per_device_batch} x {args.world_size})",
         f"{idx['sampler_s']:.1f} s"),
        ("training index total", f"{idx['seconds']:.1f} s ({idx['records'] / idx['seconds']:,.0f} records/s)"),
        ("training index peak RSS", f"{idx['peak_rss_main_mb']:.0f} MB ({idx['rss_after_imports_mb']:.0f} MB "
         "after imports)"),
    ]
    print(_table(rows, ("figure", "value")))
    print()
    print("| reason | planted | found |\n|---|---:|---:|")
    for k, a, b in check_rows:
        print(f"| {k} | {a:,} | {b:,} |" + ("" if a == b else "  <-- MISMATCH"))
    if not idx["order_is_permutation"]:
        print("sampler order is not a permutation of the dataset indices  <-- MISMATCH")
    print(f"\n{'OK' if ok else 'FAILED'}: manifest counts {'match' if not mismatches else 'differ from'} "
          "the planted damage")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
