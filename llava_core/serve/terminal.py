"""``llava-core chat``: a multi-turn chat in the terminal, or answers to ``--ask`` for scripts.

Commands at the prompt: ``/image PATH`` (a new image; the conversation starts again), ``/reset``,
``/save FILE`` (the conversation as a LLaVA record), ``/exit`` (or Ctrl-D).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from llava_core.serve.session import ChatSession

HELP = "commands: /image PATH, /reset, /save FILE, /exit"


def answer(session: ChatSession, question: str, out: TextIO, stream: bool = True) -> str:
    """Answer one question, streaming it to ``out`` token by token."""
    out.write("ASSISTANT: ")
    out.flush()
    for piece in session.stream(question):
        if stream:
            out.write(piece)
            out.flush()
    if not stream:
        out.write(session.turns[-1][1])
    out.write("\n")
    out.flush()
    return session.turns[-1][1]


def _command(session: ChatSession, line: str, out: TextIO) -> bool:
    """Run a /command; False when the chat should end."""
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name in ("/exit", "/quit"):
        return False
    if name == "/reset":
        session.reset()
        out.write("(conversation and image cleared)\n")
    elif name == "/image":
        if not arg:
            raise ValueError("usage: /image PATH")
        session.set_image(arg)
        out.write(f"(image {arg}; a new conversation)\n")
    elif name == "/save":
        if not arg:
            raise ValueError("usage: /save FILE")
        out.write(f"(saved {session.save(arg)})\n")
    else:
        raise ValueError(f"unknown command {name}; {HELP}")
    return True


def interact(session: ChatSession, read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> None:
    """The interactive loop: a question or a /command per line, until /exit or end of input."""
    out.write(f"{HELP}\n")
    while True:
        try:
            line = read("USER: ").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not _command(session, line, out):
                    return
            else:
                answer(session, line, out)
        except ValueError as e:  # a bad path or command: say so and keep the conversation
            out.write(f"error: {e}\n")
        out.flush()
