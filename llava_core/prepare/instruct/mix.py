"""The regenerated records in the stage-2 mixture: added to it (``extend``), or put in place of the
mixture's own LLaVA-Instruct records (``replace``).

mix665k does not label a record's source. Its LLaVA-Instruct records are the ones on COCO images
whose human turns carry no response-format prompt: the other sources on COCO images (VQAv2,
OKVQA, A-OKVQA, RefCOCO) append one to every question (the paper's Table 7; spec section 4.2).
"""

from __future__ import annotations

import posixpath


def is_llava_instruct(record: dict, image_folder: str, format_prompts: list[str]) -> bool:
    """Whether a mixture record is LLaVA-Instruct: its image is in ``image_folder`` and no human
    turn contains one of ``format_prompts``."""
    image = record.get("image")
    if not isinstance(image, str) or posixpath.dirname(posixpath.normpath(image)) != image_folder.strip("/"):
        return False
    humans = [t.get("value", "") for t in record.get("conversations", []) if t.get("from") == "human"]
    return not any(p in h for h in humans for p in format_prompts)


def mix_instruct(mixture: list[dict], generated: list[dict], *, mode: str, image_folder: str,
                 format_prompts: list[str]) -> tuple[list[dict], dict]:
    """The stage-2 records with ``generated`` (``llava_instruct_150k.json`` records, whose ``image``
    is a file name in ``image_folder``) mixed in by ``mode``; and the counts for the manifest."""
    if mode not in ("extend", "replace"):
        raise ValueError(f"mode must be extend or replace, got {mode!r}")
    kept = mixture
    if mode == "replace":
        kept = [r for r in mixture if not is_llava_instruct(r, image_folder, format_prompts)]
    added = [{**r, "image": posixpath.join(image_folder.strip("/"), r["image"])} for r in generated]
    stats = {"mode": mode, "mixture_records": len(mixture), "replaced": len(mixture) - len(kept),
             "generated_added": len(added), "records": len(kept) + len(added)}
    return kept + added, stats
