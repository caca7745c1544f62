#!/usr/bin/env python
"""Training index, old versus new: build time and the memory each training rank pays.

Old: every rank parses the filtered JSON list into Python objects (``read_llava_records``) and
walks them for the sampler's lengths. New: the filter job also writes the set as an Arrow folder
(``llava_core/data/index.py``); every rank memory-maps it (``open_training_index``) and reads the
precomputed lengths column.

On a mix665k-shaped corpus of records (``bench_filter.py``'s generator: COCO, GQA, OCR-VQA,
TextVQA, VG and text-only conversations; no image files, the filter runs with
``check_images=False``), each step in a freshly spawned process:

* build: ``filter_records`` without and with ``index_path`` (the index is written in the filter's
  own pass: the difference is what it costs), and ``write_training_index`` on its own, streaming
  the filtered JSON;
* one rank, old: RSS before and after ``read_llava_records`` + ``modality_lengths``;
* one rank, new: RSS after ``open_training_index`` + ``modality_lengths``, after reading random
  records, and after reading every record once (every page of the Arrow file mapped);
* ``--ranks K``: K processes open the same index at once, read every record, then report while
  all still hold it, with the proportional (PSS) figures showing the shared pages split K ways.

Memory comes from ``/proc/self/status``: RssAnon is private memory (what each rank pays),
RssFile is mapped file pages (the page cache, shared by every process mapping the same file);
``/proc/self/smaps_rollup`` gives Pss_Anon / Pss_File. Figures are increases over the process
after its imports. Linux only::

    python scripts/bench_index.py                       # 665,000 records
    python scripts/bench_index.py --records 200000 --ranks 2 4 --json /tmp/index.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bench_filter():
    spec = importlib.util.spec_from_file_location("bench_filter", HERE / "bench_filter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def generate(path: Path, n: int, text_only: float, seed: int) -> dict:
    """Write ``n`` mix665k-shaped records (about one image per 4 records) to ``path``."""
    bf = _bench_filter()
    rng = random.Random(seed)
    n_images = max(1, n // 4)
    names = [s for s, _ in bf.SOURCES]
    sources = rng.choices(names, weights=[w for _, w in bf.SOURCES], k=n_images)
    n_text = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[")
        for k in range(n):
            if rng.random() < text_only:
                rec = {"id": f"{k:07d}", "model": "", "conversations": bf._conversation(None, rng)}
                n_text += 1
            else:
                img = rng.randrange(n_images)
                rec = {"id": f"{k:07d}", "image": bf._image_path(sources[img], img, rng),
                       "conversations": bf._conversation(sources[img], rng)}
            fh.write(("" if k == 0 else ", ") + json.dumps(rec, ensure_ascii=False))
        fh.write("]\n")
    return {"records": n, "text_only": n_text, "json_mb": path.stat().st_size / 1e6}


# -- memory ---------------------------------------------------------------------------------------

def _status_mb() -> dict:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(val.split()[0]) / 1024
    try:
        with open("/proc/self/smaps_rollup") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                if key in ("Pss_Anon", "Pss_File"):
                    out[key] = int(val.split()[0]) / 1024
    except OSError:
        pass
    return out


class _PeakAnon:
    """The largest RssAnon seen while the block runs (sampled every 20 ms by a thread): the
    private peak, where VmHWM also counts mapped file pages."""

    def __enter__(self) -> _PeakAnon:
        import threading

        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _status_mb()["RssAnon"])

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mb()["RssAnon"])


def _delta(now: dict, base: dict) -> dict:
    return {k: round(now[k] - base.get(k, 0), 1) for k in now}


# -- tasks, each in a fresh process ---------------------------------------------------------------

def _task_generate(path: str, n: int, text_only: float, seed: int) -> dict:
    t0 = time.perf_counter()
    info = generate(Path(path), n, text_only, seed)
    return {**info, "seconds": time.perf_counter() - t0}


def _task_filter(src: str, out: str, index: str | None) -> dict:
    import datasets  # noqa: F401  (imported by both runs, so that their peaks differ by the index alone)

    from llava_core.prepare.filter import filter_records

    t0 = time.perf_counter()
    with _PeakAnon() as peak:
        m = filter_records(Path(src), Path(src).parent, Path(out), check_images=False,
                           index_path=Path(index) if index else None, progress=False)
    return {"seconds": time.perf_counter() - t0, "kept": m["kept"], "peak_rss_mb": _status_mb()["VmHWM"],
            "peak_anon_mb": peak.peak}


def _task_write_index(src: str, index: str) -> dict:
    from llava_core.data.formats import iter_llava_records
    from llava_core.data.index import write_training_index

    shutil.rmtree(index, ignore_errors=True)
    t0 = time.perf_counter()
    with _PeakAnon() as peak:
        n = write_training_index((rec for _, rec in iter_llava_records(src)), index)
    return {"seconds": time.perf_counter() - t0, "records": n, "peak_rss_mb": _status_mb()["VmHWM"],
            "peak_anon_mb": peak.peak}


def _task_old(src: str) -> dict:
    from llava_core.data.dataset import SupervisedDataset
    from llava_core.data.formats import read_llava_records

    base = _status_mb()
    t0 = time.perf_counter()
    ds = SupervisedDataset(read_llava_records(src), "/", template="vicuna_v1", aspect="pad", tokenizer=None,
                           image_processor=None, num_image_tokens=576, max_length=2048)
    lengths = ds.modality_lengths()
    secs = time.perf_counter() - t0
    return {"seconds": secs, "records": len(lengths), "after_load": _delta(_status_mb(), base), "base": base}


def _read_all(index) -> int:
    n = 0
    for rec in index:
        n += len(rec["conversations"])
    return n


def _task_new(index: str, random_reads: int, seed: int) -> dict:
    import datasets  # noqa: F401  (imported lazily by the index: its memory is not the index's)

    from llava_core.data.dataset import SupervisedDataset
    from llava_core.data.index import open_training_index

    base = _status_mb()
    t0 = time.perf_counter()
    ds = SupervisedDataset(open_training_index(index), "/", template="vicuna_v1", aspect="pad", tokenizer=None,
                           image_processor=None, num_image_tokens=576, max_length=2048)
    lengths = ds.modality_lengths()
    open_s = time.perf_counter() - t0
    after_open = _delta(_status_mb(), base)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for _ in range(random_reads):
        ds.records[rng.randrange(len(lengths))]
    random_s = time.perf_counter() - t0
    after_random = _delta(_status_mb(), base)
    t0 = time.perf_counter()
    _read_all(ds.records)
    full_s = time.perf_counter() - t0
    return {"open_s": open_s, "records": len(lengths), "random_reads": random_reads,
            "random_read_us": 1e6 * random_s / max(1, random_reads), "full_pass_s": full_s,
            "after_open": after_open, "after_random": after_random,
            "after_full_pass": _delta(_status_mb(), base), "base": base}


def _rank(conn, barrier, index: str, random_reads: int, seed: int) -> None:
    try:
        import datasets  # noqa: F401

        from llava_core.data.index import open_training_index

        base = _status_mb()
        idx = open_training_index(index)
        lengths = idx.modality_lengths()
        rng = random.Random(seed)
        for _ in range(random_reads):
            idx[rng.randrange(len(lengths))]
        _read_all(idx)
        barrier.wait()  # every rank holds its mapping now
        conn.send(("ok", {"delta": _delta(_status_mb(), base), "base": base}))
        barrier.wait()
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_ranks(index: str, k: int, random_reads: int) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(k)
    procs, pipes = [], []
    for r in range(k):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_rank, args=(send, barrier, index, random_reads, r))
        p.start()
        send.close()
        procs.append(p)
        pipes.append(recv)
    out = []
    for recv in pipes:
        status, payload = recv.recv()
        if status != "ok":
            raise SystemExit(f"rank failed:\n{payload}")
        out.append(payload)
    for p in procs:
        p.join()
    return out


TASKS = {"generate": _task_generate, "filter": _task_filter, "write_index": _task_write_index, "old": _task_old,
         "new": _task_new}


def _child(conn, task: str, kwargs: dict) -> None:
    try:
        conn.send(("ok", TASKS[task](**kwargs)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_fresh(task: str, **kwargs) -> dict:
    """``TASKS[task](**kwargs)`` in a freshly spawned interpreter."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, task, kwargs))
    proc.start()
    send.close()
    try:
        status, out = recv.recv()
    except EOFError:
        proc.join()
        raise SystemExit(f"the {task} process died (exit code {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise SystemExit(f"{task} failed:\n{out}")
    return out


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=665_000, help="records in the corpus (default 665000)")
    p.add_argument("--text-only", type=float, default=0.06, help="share of text-only records (mix665k: about 6%%)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-reads", type=int, default=20_000, help="random records read per rank (new way)")
    p.add_argument("--ranks", type=int, nargs="*", default=[4], help="concurrent ranks to simulate (default 4)")
    p.add_argument("--skip-old", action="store_true", help="skip the old way (it needs several GB at 665K)")
    p.add_argument("--workdir", type=Path, default=None, help="where the corpus goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the corpus (reused by a later run with the same options)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures to PATH")
    args = p.parse_args(argv)

    root = (args.workdir / "bench_index") if args.workdir else Path(tempfile.mkdtemp(prefix="bench_index-"))
    root.mkdir(parents=True, exist_ok=True)
    src, out = root / "records.json", root / "filtered"
    gen_opts = {"records": args.records, "text_only": args.text_only, "seed": args.seed}
    stamp = root / "corpus.json"
    fig: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform(terse=True)}}
    try:
        if stamp.exists() and json.loads(stamp.read_text()).get("options") == gen_opts:
            fig["corpus"] = json.loads(stamp.read_text())["corpus"]
            print(f"reusing the corpus in {root}", file=sys.stderr)
        else:
            print(f"generating {args.records:,} records in {root} ...", file=sys.stderr)
            fig["corpus"] = run_fresh("generate", path=str(src), n=args.records, text_only=args.text_only,
                                      seed=args.seed)
            stamp.write_text(json.dumps({"options": gen_opts, "corpus": fig["corpus"]}))
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        print("filter without the index ...", file=sys.stderr)
        f0 = run_fresh("filter", src=str(src), out=str(out / "noindex.json"), index=None)
        print("filter with the index ...", file=sys.stderr)
        f1 = run_fresh("filter", src=str(src), out=str(out / "finetune.json"), index=str(out / "finetune.arrow"))
        print("write_training_index alone ...", file=sys.stderr)
        w = run_fresh("write_index", src=str(out / "finetune.json"), index=str(out / "standalone.arrow"))
        fig["build"] = {"filter_without_index_s": round(f0["seconds"], 1), "filter_with_index_s": round(f1["seconds"], 1),
                        "index_cost_in_filter_s": round(f1["seconds"] - f0["seconds"], 1),
                        "write_training_index_alone_s": round(w["seconds"], 1),
                        "filter_peak_rss_without_mb": round(f0["peak_rss_mb"]),
                        "filter_peak_rss_with_mb": round(f1["peak_rss_mb"]),
                        "filter_peak_anon_without_mb": round(f0["peak_anon_mb"]),
                        "filter_peak_anon_with_mb": round(f1["peak_anon_mb"]),
                        "write_training_index_alone_peak_anon_mb": round(w["peak_anon_mb"]),
                        "json_mb": round((out / "finetune.json").stat().st_size / 1e6, 1),
                        "index_mb": round(_dir_mb(out / "finetune.arrow"), 1), "kept": f1["kept"]}
        index = str(out / "finetune.arrow")
        if not args.skip_old:
            print("old: read_llava_records ...", file=sys.stderr)
            fig["old"] = run_fresh("old", src=str(out / "finetune.json"))
        print("new: open_training_index ...", file=sys.stderr)
        fig["new"] = run_fresh("new", index=index, random_reads=args.random_reads, seed=args.seed)
        fig["ranks"] = {}
        for k in args.ranks:
            print(f"{k} ranks sharing the index ...", file=sys.stderr)
            fig["ranks"][k] = run_ranks(index, k, args.random_reads)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    n = fig["build"]["kept"]
    b = fig["build"]
    print(f"\nMachine: {fig['machine']['cpus']} CPUs, Python {fig['machine']['python']}, {fig['machine']['platform']}")
    print(f"Corpus: {n:,} records ({fig['corpus']['text_only']:,} text-only), filtered JSON {b['json_mb']:.0f} MB, "
          f"index {b['index_mb']:.0f} MB\n")
    rows = [("filter (check_images=False), JSON only", f"{b['filter_without_index_s']:.1f} s"),
            ("filter (check_images=False), JSON + index", f"{b['filter_with_index_s']:.1f} s "
             f"(+{b['index_cost_in_filter_s']:.1f} s)"),
            ("write_training_index alone, streaming the filtered JSON", f"{b['write_training_index_alone_s']:.1f} s"),
            ("filter peak RssAnon (private) without / with index", f"{b['filter_peak_anon_without_mb']} / "
             f"{b['filter_peak_anon_with_mb']} MB"),
            ("filter peak RSS (VmHWM, with mapped file pages) without / with index",
             f"{b['filter_peak_rss_without_mb']} / {b['filter_peak_rss_with_mb']} MB"),
            ("write_training_index alone, peak RssAnon", f"{b['write_training_index_alone_peak_anon_mb']} MB")]
    if "old" in fig:
        o = fig["old"]
        rows += [("old, per rank: read JSON + lengths", f"{o['seconds']:.1f} s"),
                 ("old, per rank: RssAnon (private)", f"{o['after_load']['RssAnon']:,.0f} MB"),
                 ("old, per rank: RssFile (shared)", f"{o['after_load']['RssFile']:,.0f} MB")]
    nw = fig["new"]
    rows += [("new, per rank: open + lengths", f"{nw['open_s']:.2f} s"),
             ("new, per rank: RssAnon / RssFile after open + lengths",
              f"{nw['after_open']['RssAnon']:,.0f} / {nw['after_open']['RssFile']:,.0f} MB"),
             (f"new, per rank: after {nw['random_reads']:,} random reads ({nw['random_read_us']:.0f} us each)",
              f"{nw['after_random']['RssAnon']:,.0f} / {nw['after_random']['RssFile']:,.0f} MB"),
             (f"new, per rank: after reading all records ({nw['full_pass_s']:.1f} s)",
              f"{nw['after_full_pass']['RssAnon']:,.0f} / {nw['after_full_pass']['RssFile']:,.0f} MB"),
             ("new: RssAnon after the imports (torch, datasets), not counted above", f"{nw['base']['RssAnon']:,.0f} MB")]
    for k, ranks in fig["ranks"].items():
        anon = max(r["delta"]["RssAnon"] for r in ranks)
        rss_file = max(r["delta"]["RssFile"] for r in ranks)
        pss = [r["delta"].get("Pss_File") for r in ranks]
        pss_txt = f", Pss_File {max(pss):,.0f} MB each" if None not in pss else ""
        rows.append((f"new, {k} ranks at once (max over ranks)", f"RssAnon {anon:,.0f} MB, RssFile {rss_file:,.0f} MB"
                     f"{pss_txt}"))
    print("| figure | value |\n|---|---:|")
    for a, v in rows:
        print(f"| {a} | {v} |")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
