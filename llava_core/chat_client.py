"""The OpenAI-compatible chat client that the judge and the instruction teacher both use.

``POST {base_url}/chat/completions`` with retries and backoff (:class:`OpenAIChat`), the token counts
the endpoint reports, and a reply cache (:class:`ReplyCache`, :class:`CachedChat`) so that a rerun
or a resumed run sends only the requests it has no reply for. Transport only: what is asked and how
the replies are read stay with the judge (``evaluate/judge.py``) and the teacher
(``prepare/instruct``), whose code digests cover them. This module is plumbing
(``llava_core/plan/plumbing.py``): editing a retry or the cache reruns nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class ChatError(RuntimeError):
    """The endpoint could not answer (after retries, or a non-retryable error)."""

    user_facing = True  # the CLI prints the message (endpoint, status, what to check), no traceback


class OpenAIChat:
    """``POST {base_url}/chat/completions`` with retries; the key comes from the environment."""

    def __init__(self, cfg, sleep: Callable[[float], None] | None = None):
        self.model = str(cfg.model)
        self.url = str(cfg.base_url).rstrip("/") + "/chat/completions"
        self.api_key_env = str(cfg.api_key_env)
        self.timeout = float(cfg.timeout_s)
        self.max_retries = int(cfg.max_retries)
        self.backoff = float(cfg.backoff_s)
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.requests = 0  # HTTP requests sent (tests count them)
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}  # as the endpoint reports them
        self._lock = threading.Lock()  # one client may serve several threads (instruct generation)
        self._local = threading.local()  # the last reply's usage, per thread

    @property
    def last_usage(self) -> dict | None:
        """The token counts the endpoint reported for this thread's last reply."""
        return getattr(self._local, "usage", None)

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def complete(self, messages: list[dict], *, temperature: float, max_tokens: int, seed: int) -> tuple[str, str]:
        """(reply text, the model name the server reports)."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": temperature,
                           "max_tokens": max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            with self._lock:
                self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                content = data["choices"][0]["message"]["content"] or ""
                reported = {k: int((data.get("usage") or {}).get(k) or 0) for k in self.usage}
                self._local.usage = reported
                with self._lock:
                    for k in self.usage:
                        self.usage[k] += reported[k]
                return content, str(data.get("model") or self.model)
            except urllib.error.HTTPError as e:
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if e.code != 429 and e.code < 500:
                    raise ChatError(f"judge endpoint {self.url} answered HTTP {e.code} ({e.reason}); "
                                     f"check the model and base_url (evaluation.judge, or data.instruct.generate.teacher) "
                                     f"and ${self.api_key_env}") from None
                why = f"HTTP {e.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                retry_after, why = None, type(getattr(e, "reason", e)).__name__
            except (KeyError, IndexError, TypeError, json.JSONDecodeError):
                raise ChatError(f"judge endpoint {self.url} sent a reply without choices[0].message.content") \
                    from None
            if attempt == self.max_retries:
                raise ChatError(f"judge endpoint {self.url}: {why} after {attempt + 1} tries")
            wait = min(60.0, self.backoff * 2 ** attempt)
            if retry_after:
                try:
                    wait = min(60.0, max(wait, float(retry_after)))
                except ValueError:
                    pass
            log.warning("judge: %s; retrying in %.1f s (%d/%d)", why, wait, attempt + 1, self.max_retries)
            self.sleep(wait)
        raise AssertionError("unreachable")


def prompt_digest(messages: list[dict], temperature: float, max_tokens: int) -> str:
    payload = json.dumps({"messages": messages, "temperature": temperature, "max_tokens": max_tokens},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class ReplyCache:
    """Replies by (model, prompt digest, pass), appended to a jsonl as they arrive."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[tuple[str, str, int], dict] = {}
        self._lock = threading.Lock()  # appends from several threads stay whole lines
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        e = json.loads(line)
                        self.entries[(e["judge"], e["prompt_digest"], int(e["pass"]))] = e
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                        continue  # a line cut short by a kill

    def get(self, judge: str, digest: str, pass_: int) -> dict | None:
        return self.entries.get((judge, digest, pass_))

    def put(self, judge: str, digest: str, pass_: int, content: str, model: str, usage: dict | None = None) -> dict:
        entry = {"judge": judge, "prompt_digest": digest, "pass": pass_, "content": content, "model": model}
        if usage:
            entry["usage"] = usage
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a+b") as fh:
            if fh.seek(0, os.SEEK_END):  # end a line cut short by a kill first
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.entries[(judge, digest, pass_)] = entry
        return entry


class CachedChat:
    """A backend behind the reply cache: :meth:`ask` sends a request only for an unseen (prompt,
    pass). ``name`` keys the cache (the configured model); ``cfg`` is the caller's settings."""

    def __init__(self, name: str, backend, cache_path: Path, cfg=None):
        self.cfg = cfg
        self.name = str(name)
        self.backend = backend
        self.cache = ReplyCache(cache_path)
        self.cached = 0
        self.served: set[str] = set()  # model names the backend reported
        self._lock = threading.Lock()

    def ask(self, messages: list[dict], *, pass_: int, temperature: float, max_tokens: int) -> tuple[str, str]:
        entry = self.ask_entry(messages, pass_=pass_, temperature=temperature, max_tokens=max_tokens)
        return entry["content"], entry["model"]

    def ask_entry(self, messages: list[dict], *, pass_: int, temperature: float, max_tokens: int) -> dict:
        """The cache entry of the reply (``content``, ``model``, ``usage`` where the endpoint
        reported tokens), asking the backend only when the cache has none."""
        digest = prompt_digest(messages, temperature, max_tokens)
        hit = self.cache.get(self.name, digest, pass_)
        if hit is not None:
            with self._lock:
                self.cached += 1
            hit = {**hit, "model": hit.get("model", self.name)}
        else:
            seed = int(digest[:8], 16) ^ pass_
            content, model = self.backend.complete(messages, temperature=temperature, max_tokens=max_tokens,
                                                   seed=seed)
            hit = self.cache.put(self.name, digest, pass_, content, model, getattr(self.backend, "last_usage", None))
        self.served.add(hit["model"])
        return hit

    @property
    def requests(self) -> int:
        return int(getattr(self.backend, "requests", 0))
