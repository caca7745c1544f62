"""The authors' prompt folder (``playground/data/prompts/<kind>/``): a ``system_message.txt`` and
few-shot pairs ``NNN_caps.txt`` (a context) / ``NNN_conv.txt`` (the reply wanted for it). One
request is the system message, each pair as a user turn and an assistant turn, then the image's
own context as the last user turn (the paper's appendix, "messages")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

#: The three kinds of LLaVA-Instruct, by their folder names.
KINDS = ("conversation", "detail_description", "complex_reasoning")
_BOX_LINE = re.compile(r"^[^:\n]+: \[[0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+\]$", re.M)


class PromptError(ValueError):
    """A prompt folder that is not in the authors' layout."""


@dataclass(frozen=True)
class KindPrompts:
    """One kind's system message and few-shot (context, reply) pairs, in file order."""

    kind: str
    system: str
    examples: tuple[tuple[str, str], ...]

    @cached_property  # asked once per request; the examples never change
    def with_boxes(self) -> bool:
        """Whether this kind's contexts list object boxes (the few-shot contexts show them)."""
        return any(_BOX_LINE.search(context) for context, _ in self.examples)

    def messages(self, context: str) -> list[dict]:
        """The chat messages of one request about an image whose context is ``context``."""
        out = [{"role": "system", "content": self.system}]
        for example, reply in self.examples:
            out += [{"role": "user", "content": example}, {"role": "assistant", "content": reply}]
        return out + [{"role": "user", "content": context}]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def load_kind(folder: Path, kind: str) -> KindPrompts:
    """Read ``folder/<kind>/``; a missing system message, an unpaired file or no example is an error."""
    root = Path(folder) / kind
    system = root / "system_message.txt"
    if not system.is_file():
        raise PromptError(f"{system}: missing; a prompt folder holds <kind>/system_message.txt and "
                          "NNN_caps.txt / NNN_conv.txt pairs (the authors' playground/data/prompts layout)")
    caps = {p.name[: -len("_caps.txt")]: p for p in root.glob("*_caps.txt")}
    convs = {p.name[: -len("_conv.txt")]: p for p in root.glob("*_conv.txt")}
    if unpaired := sorted(set(caps) ^ set(convs)):
        raise PromptError(f"{root}: few-shot files without their pair: "
                          + ", ".join(f"{n}_{'conv' if n in caps else 'caps'}.txt missing" for n in unpaired))
    if not caps:
        raise PromptError(f"{root}: no few-shot example (NNN_caps.txt with NNN_conv.txt)")
    examples = tuple((_read(caps[n]), _read(convs[n])) for n in sorted(caps))
    return KindPrompts(kind, _read(system), examples)


def load_prompts(folder: Path, kinds: tuple[str, ...] = KINDS) -> dict[str, KindPrompts]:
    """Every requested kind of the prompt folder."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise PromptError(f"unknown kind(s) {unknown}; the kinds are {list(KINDS)}")
    return {k: load_kind(folder, k) for k in kinds}
