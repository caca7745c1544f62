"""Ask the teacher for every (image, kind), parse, retry a malformed reply once, write records.

The teacher is a :class:`~llava_core.chat_client.CachedChat` (an OpenAI-compatible endpoint, a
local transformers model, or :class:`~.rule_teacher.RuleTeacher` behind the HTTP client), so replies go
through its cache keyed by (model, prompt digest, pass): a rerun, or a run resumed after a crash,
sends only the requests it has no reply for. A retry is pass ``seed + 1`` of the same prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from llava_core.prepare.instruct.context import ImageFacts, symbolic_context
from llava_core.prepare.instruct.parse import Malformed, parse_reply
from llava_core.prepare.instruct.prompts import KindPrompts
from llava_core.prepare.instruct.records import make_record

#: Tries per (image, kind): the first reply and one retry.
TRIES = 2


def generate_instruct(facts: Sequence[ImageFacts], prompts: dict[str, KindPrompts], teacher, *, seed: int = 0,
                      temperature: float = 1.0, max_tokens: int = 1024, workers: int = 4,
                      detail_prompts: tuple[str, ...] = (), progress: bool = True) -> tuple[list[dict], dict]:
    """Records for every image and kind of ``prompts`` (in that order: kinds, then images) and a
    manifest: per kind requested / kept / dropped by reason, the dropped (image, kind, reason)
    list, the tokens of the replies behind it; and the requests this run sent, the replies it took
    from the cache and the tokens the endpoint reported for its requests (``tokens``)."""
    jobs = [(kind, f) for kind in prompts for f in facts]

    def one(job: tuple[str, ImageFacts]) -> dict:
        kind, f = job
        kp = prompts[kind]
        messages = kp.messages(symbolic_context(f, kp.with_boxes))
        tokens: Counter = Counter()
        for attempt in range(TRIES):
            entry = teacher.ask_entry(messages, pass_=seed + attempt, temperature=temperature, max_tokens=max_tokens)
            tokens.update(entry.get("usage") or {})
            try:
                parsed = parse_reply(kind, entry["content"])
            except Malformed as err:
                last = err
                continue
            return {"kind": kind, "tokens": tokens,
                    "record": make_record(f.image_id, kind, parsed, seed=seed, detail_prompts=detail_prompts)}
        return {"kind": kind, "tokens": tokens,
                "dropped": {"image_id": f.image_id, "kind": kind, "reason": last.reason, "detail": last.detail}}

    sent_before, cached_before = teacher.requests, teacher.cached
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(tqdm(pool.map(one, jobs), total=len(jobs), desc="instruct", unit="req", disable=not progress))
    records = [r["record"] for r in results if "record" in r]
    dropped = [r["dropped"] for r in results if "dropped" in r]
    per_kind = {}
    for kind in prompts:
        reasons = Counter(d["reason"] for d in dropped if d["kind"] == kind)
        made_with = sum((r["tokens"] for r in results if r["kind"] == kind), Counter())
        per_kind[kind] = {"requested": len(facts), "kept": len(facts) - sum(reasons.values()),
                          "dropped": dict(sorted(reasons.items())),
                          # every reply behind this kind's records, cached or not (a rerun reports the same)
                          "tokens": {k: made_with.get(k, 0) for k in ("prompt_tokens", "completion_tokens")}}
    usage = dict(getattr(teacher.backend, "usage", {}) or {})
    manifest = {"teacher": teacher.name, "kinds": per_kind, "dropped": dropped,
                "requests_sent": teacher.requests - sent_before, "replies_from_cache": teacher.cached - cached_before,
                "tokens": usage}
    return records, manifest
