"""The instruct stage of a dataset, as ``llava-core instruct`` runs it.

``run_instruct`` fetches the teacher's sources (COCO captions and instances, the prompt folder;
verified against ``<data>/instruct.lock.json``), draws the images, asks the teacher for every
(image, kind) through the cached client, and writes ``instruct/llava_instruct.json`` (the released
``llava_instruct_150k.json`` layout) and ``instruct/manifest.json``. The reply cache
``instruct/cache.jsonl`` survives reruns and kills: a rerun pays only for replies it lacks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from omegaconf import DictConfig

from llava_core.plan.layout import default_dir, outputs

log = logging.getLogger(__name__)
LOCK = "instruct.lock.json"
CACHE = "instruct/cache.jsonl"


def select_images(facts: dict, num_images: int | None, seed: int) -> list:
    """The captioned images to ask about: all of them, or ``num_images`` drawn with ``seed``; by id."""
    ids = sorted(i for i, f in facts.items() if f.captions)
    if num_images is not None and num_images < len(ids):
        ids = sorted(random.Random(seed).sample(ids, num_images))
    return [facts[i] for i in ids]


def prompt_checksums(folder: Path, kinds: list[str]) -> dict[str, str]:
    """sha256 of every file of the kinds' prompt folders, by path relative to ``folder``."""
    from llava_core.io import sha256_file

    return {p.relative_to(folder).as_posix(): sha256_file(p)
            for kind in kinds for p in sorted((folder / kind).glob("*.txt"))}


@contextlib.contextmanager
def teacher_chat(teacher_cfg, cache_path: Path) -> Iterator:
    """The teacher behind the reply cache (:class:`~llava_core.chat_client.CachedChat`). ``openai``:
    the endpoint; ``local``: a transformers model; ``rule``: the rule teacher served on 127.0.0.1 for
    the duration, reached through the same HTTP client as a hosted API."""
    from llava_core.chat_client import CachedChat, OpenAIChat

    if teacher_cfg.kind == "local":
        from llava_core.local_chat import LocalChat

        yield CachedChat(teacher_cfg.model, LocalChat(teacher_cfg), cache_path, teacher_cfg)
        return
    if teacher_cfg.kind != "rule":
        yield CachedChat(teacher_cfg.model, OpenAIChat(teacher_cfg), cache_path, teacher_cfg)
        return
    from llava_core.prepare.instruct.rule_teacher import RULE_TEACHER_MODEL, RuleTeacher, serve

    model = str(teacher_cfg.model or RULE_TEACHER_MODEL)
    server = serve(RuleTeacher(model))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client_cfg = SimpleNamespace(kind="openai", model=model, base_url=f"http://127.0.0.1:{server.server_port}",
                                     api_key_env=teacher_cfg.api_key_env, timeout_s=teacher_cfg.timeout_s,
                                     max_retries=teacher_cfg.max_retries, backoff_s=teacher_cfg.backoff_s)
        yield CachedChat(model, OpenAIChat(client_cfg), cache_path, client_cfg)
    finally:
        server.shutdown()
        server.server_close()


def cost_usd(tokens: dict, teacher_cfg) -> float | None:
    """What the tokens cost at the configured prices (None when the teacher is not priced)."""
    p, c = teacher_cfg.usd_per_mtok_prompt, teacher_cfg.usd_per_mtok_completion
    if p is None or c is None:
        return None
    return round((tokens.get("prompt_tokens", 0) * p + tokens.get("completion_tokens", 0) * c) / 1e6, 6)


def run_instruct(cfg: DictConfig, data_dir: Path, run, *, out_dir: Path | None = None, base_url: str | None = None,
                 workers: int = 4, progress: bool = True) -> dict:
    """Regenerate LLaVA-Instruct into ``out_dir`` (default ``<data_dir>/instruct/``); return the
    manifest. The sources and the teacher's reply cache stay in ``data_dir`` (shared by every
    configuration of the generation: a rerun, or another seed's, sends only new requests)."""
    from llava_core.data.formats import write_llava_records
    from llava_core.io import write_json
    from llava_core.prepare.download_stage import fetch_declared
    from llava_core.prepare.instruct.context import coco_facts
    from llava_core.prepare.instruct.generate import generate_instruct
    from llava_core.prepare.instruct.prompts import load_prompts

    ins = cfg.data.instruct
    gen = ins.generate
    lock = fetch_declared(cfg, ins.sources, data_dir, data_dir / LOCK, workers=workers, base_url=base_url,
                          progress=progress)
    run.log_artifact(data_dir / LOCK)
    for key in ("captions", "instances"):
        if not (data_dir / ins[key]).is_file():
            raise FileNotFoundError(f"{data_dir / ins[key]}: data.instruct.{key} is not among the files its sources "
                                    "gave; check data.instruct.sources and the path")
    facts = coco_facts(json.loads((data_dir / ins.captions).read_text(encoding="utf-8")),
                       json.loads((data_dir / ins.instances).read_text(encoding="utf-8")))
    chosen = select_images(facts, gen.num_images, gen.seed)
    prompts_dir = data_dir / ins.prompts
    prompts = load_prompts(prompts_dir, tuple(gen.kinds))
    checksums = prompt_checksums(prompts_dir, list(gen.kinds))
    log.info("instruct: %d of %d captioned images x %d kinds, teacher %s (%s)", len(chosen), len(facts),
             len(prompts), gen.teacher.model, gen.teacher.kind)

    out = Path(outputs("instruct", str(out_dir or default_dir(str(data_dir), "instruct")))["records"])
    with teacher_chat(gen.teacher, data_dir / CACHE) as teacher:
        records, manifest = generate_instruct(chosen, prompts, teacher, seed=gen.seed, temperature=gen.temperature,
                                              max_tokens=gen.max_tokens, workers=gen.teacher.concurrency,
                                              detail_prompts=tuple(gen.detail_instructions), progress=progress)
    manifest.update(teacher={"kind": gen.teacher.kind, "model": teacher.name, "served_by": sorted(teacher.served)},
                    images={"captioned": len(facts), "asked": len(chosen)}, seed=gen.seed,
                    prompts_sha256=checksums, sources={k: v.get("sha256") for k, v in lock["sources"].items()},
                    records=len(records), cost_usd=cost_usd(manifest["tokens"], gen.teacher))
    write_llava_records(out, records)
    write_json(outputs("instruct", str(out_dir or default_dir(str(data_dir), "instruct")))["manifest"], manifest)

    run.log_params({f"prompt_sha256/{k}": v for k, v in checksums.items()})
    metrics = {"instruct/records": len(records), "instruct/images": len(chosen),
               "instruct/requests_sent": manifest["requests_sent"],
               "instruct/replies_from_cache": manifest["replies_from_cache"],
               **{f"instruct/tokens/{k}": v for k, v in manifest["tokens"].items()}}
    for kind, m in manifest["kinds"].items():
        metrics.update({f"instruct/{kind}/requested": m["requested"], f"instruct/{kind}/kept": m["kept"],
                        **{f"instruct/{kind}/dropped/{r}": n for r, n in m["dropped"].items()}})
    if manifest["cost_usd"] is not None:
        metrics["instruct/cost_usd"] = manifest["cost_usd"]
    run.log_metrics(metrics)
    run.log_artifact(outputs("instruct", str(out_dir or default_dir(str(data_dir), "instruct")))["manifest"])
    log.info("instruct: %d records; %d requests sent, %d replies from the cache; tokens %s", len(records),
             manifest["requests_sent"], manifest["replies_from_cache"], manifest["tokens"])
    return manifest
