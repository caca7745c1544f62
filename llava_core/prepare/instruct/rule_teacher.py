"""A deterministic, offline teacher for tests and the tiny world (not the paper's GPT-4).

It answers a generation request (:meth:`KindPrompts.messages`) from the context in its last user
turn, in the format its few-shot replies show: ``Question:``/``Answer:`` blocks when they are
conversations, else a description. Questions come from the captions and boxes (what the image
shows, how many of each boxed object), so what it writes is true of the context. It serves the
same ``complete`` interface as the judge backends, and :func:`serve` puts it behind a local
OpenAI-compatible endpoint so tests exercise the real HTTP client and cache.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RULE_TEACHER_MODEL = "rule-teacher"
_BOX = re.compile(r"^([^:\n]+): \[[0-9., ]+\]$", re.M)


def _plural(word: str, n: int) -> str:
    return word if n == 1 else (word + "es" if word.endswith(("s", "sh", "ch", "x")) else word + "s")


class RuleTeacher:
    """``complete(messages)`` -> a reply in the few-shot replies' format, true of the context."""

    def __init__(self, model: str = RULE_TEACHER_MODEL):
        self.model = model
        self.requests = 0
        self._lock = threading.Lock()

    def complete(self, messages: list[dict], *, temperature: float = 0.0, max_tokens: int = 0,
                 seed: int = 0) -> tuple[str, str]:
        with self._lock:
            self.requests += 1
        context = messages[-1]["content"]
        captions = [line.strip() for line in context.split("\n\n")[0].splitlines() if line.strip()]
        counts = Counter(m.strip() for m in _BOX.findall(context))
        examples = [m["content"] for m in messages if m["role"] == "assistant"]
        if examples and examples[0].lstrip().startswith("Question:"):
            turns = [("What is shown in the image?", captions[seed % len(captions)] if captions else "An image.")]
            turns += [(f"How many {_plural(name, 2)} are there in the image?",
                       f"There {'is' if n == 1 else 'are'} {n} {_plural(name, n)} in the image.")
                      for name, n in sorted(counts.items())]
            return "\n===\n".join(f"Question:\n{q}\n===\nAnswer:\n{a}" for q, a in turns), self.model
        text = " ".join(captions)
        if counts:
            listed = ", ".join(f"{n} {_plural(name, n)}" for name, n in sorted(counts.items()))
            text += f"\n\nThe image contains {listed}."
        return text, self.model


def serve(teacher: RuleTeacher, port: int = 0, fail_after: int | None = None) -> ThreadingHTTPServer:
    """An OpenAI-compatible ``/chat/completions`` endpoint on 127.0.0.1 answering with ``teacher``;
    after ``fail_after`` answers every request gets HTTP 400 (a test's "killed" teacher). The caller
    runs ``serve_forever`` (e.g. in a thread) and closes it. ``server.answered`` counts answers."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with server.lock:  # check and count in one step: concurrent requests cannot overshoot fail_after
                stopped = fail_after is not None and server.answered >= fail_after
                if not stopped:
                    server.answered += 1
            if stopped:
                self.send_error(400, "teacher stopped")
                return
            content, model = teacher.complete(body.get("messages", []), temperature=body.get("temperature", 0.0),
                                              max_tokens=body.get("max_tokens", 0))
            usage = {"prompt_tokens": sum(len(m.get("content", "").split()) for m in body.get("messages", [])),
                     "completion_tokens": len(content.split())}
            payload = json.dumps({"model": model, "choices": [{"message": {"role": "assistant", "content": content}}],
                                  "usage": usage}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.answered, server.lock = 0, threading.Lock()
    return server
