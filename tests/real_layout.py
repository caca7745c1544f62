"""A scaled-down copy of a real preset's data, laid out as a mirror of the real hosts.

For every source the preset declares, the mirror serves a small file or archive in the real
layout (``<mirror>/<host>/<path>``; mirror-only files at ``<mirror>/<url>``): LCS-558K's JSON and
sub-folder images, the mix665k JSON over COCO/GQA/OCR-VQA/TextVQA/VG images in their archives'
top folders, OCR-VQA's ``dataset.json`` pointing at covers on the same server, and, for the
benchmark files, archives that hold whatever the preset's links point into. Damage is planted
the way users meet it (a missing image, a truncated and an empty one, a dead OCR-VQA cover, a GIF
and a PNG served for ``.jpg`` names, a duplicate and a malformed record), and the expected
filter outcome is returned alongside.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from llava_core.prepare.sources import hub_url


def image_bytes(seed: int, fmt: str = "JPEG", shape: tuple[int, int] = (24, 24)) -> bytes:
    """A random-noise picture, encoded as ``fmt``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def _conv(q: str, a: str) -> list[dict]:
    return [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip archive holding ``files`` (member name -> bytes), in the dict's order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def mirror_path(url: str) -> str:
    """Where a source URL sits on a mirror: ``<host>/<path>`` (hub paths by their resolve URL), or
    the relative URL itself."""
    if "://" not in url:
        return url
    parsed = urlparse(hub_url(url))
    return parsed.netloc + parsed.path


class Plan:
    """Records and their expected fate, per part."""

    def __init__(self) -> None:
        self.records: dict[str, list] = {"pretrain": [], "finetune": []}
        self.expect: dict[str, Counter] = {"pretrain": Counter(), "finetune": Counter()}

    def add(self, part: str, rec: object, fate: str = "kept") -> None:
        self.records[part].append(rec)
        self.expect[part][fate] += 1


def build_mirror(root: Path, data_cfg: dict, server_base: str) -> dict:
    """Write the mirror for ``data_cfg`` (a resolved ``data`` config of llava-v1.5) under ``root``.

    Returns ``{"expect": {part: Counter of fates}, "ocr": {...}, "files": [mirror paths]}``.
    """
    plan = Plan()
    seed = iter(range(1, 10_000))
    archives: dict[str, dict[str, bytes]] = {}  # source name -> archive members
    files: dict[str, bytes] = {}  # source name -> file bytes

    # Stage 1: LCS-558K, images in sub-folders at the archive root.
    lcs = {}
    for i in range(30):
        rel = f"{i // 10:05d}/{i:09d}.jpg"
        lcs[rel] = image_bytes(next(seed))
        fate = "kept"
        if i == 3:
            del lcs[rel]
            fate = "missing_image"
        elif i == 4:
            lcs[rel] = lcs[rel][: len(lcs[rel]) // 2]
            fate = "truncated_image"
        plan.add("pretrain", {"id": f"{i:09d}", "image": rel, "conversations": _conv("Describe.", f"caption {i}")},
                 fate)
    plan.add("pretrain", dict(plan.records["pretrain"][0]), "duplicate")
    archives["lcs558k-images"] = lcs
    files["lcs558k-json"] = json.dumps(plan.records["pretrain"]).encode()

    # Stage 2 image sources: name -> (archive top folder, record prefix).
    folders = {"coco-train2017": ("train2017", "coco/train2017"), "gqa-images": ("images", "gqa/images"),
               "textvqa-images": ("train_images", "textvqa/train_images"), "vg-part1": ("VG_100K", "vg/VG_100K"),
               "vg-part2": ("VG_100K_2", "vg/VG_100K_2")}
    for name, (top, prefix) in folders.items():
        members = {}
        for k in range(3):
            fname = f"{name}-{k}.jpg"
            members[f"{top}/{fname}"] = image_bytes(next(seed))
            fate = "kept"
            if name == "vg-part2" and k == 2:
                members[f"{top}/{fname}"] = b""  # VG_100K_2 files that unzip empty (#593)
                fate = "empty_image"
            for q in range(2):  # several questions about one image, as VQA sources do
                plan.add("finetune", {"id": f"{name}-{k}-{q}", "image": f"{prefix}/{fname}",
                                      "conversations": _conv(f"Question {q}?", f"answer {k}{q}")}, fate)
        archives[name] = members

    # OCR-VQA: covers crawled from "Amazon" (this server); one dead, a GIF and a PNG for .jpg names.
    ocr = {"jpeg": ("1001", "JPEG"), "gif": ("1002", "GIF"), "png": ("1003", "PNG"), "dead": ("1004", None)}
    dataset = {}
    for kind, (asin, fmt) in ocr.items():
        ext = {"JPEG": "jpg", "GIF": "gif", "PNG": "png", None: "jpg"}[fmt]
        cover = f"amazon/images/I/{asin}.{ext}"
        if fmt:
            (root / cover).parent.mkdir(parents=True, exist_ok=True)
            (root / cover).write_bytes(image_bytes(next(seed), fmt))
        dataset[asin] = {"imageURL": f"{server_base}/{cover}", "title": f"Book {asin}", "questions": ["Title?"],
                         "answers": [f"Book {asin}"], "split": 1}
        plan.add("finetune", {"id": asin, "image": f"ocr_vqa/images/{asin}.jpg",
                              "conversations": _conv("What is the title of this book?", f"Book {asin}")},
                 "missing_image" if kind == "dead" else "kept")
    dataset["2000"] = {"imageURL": f"{server_base}/amazon/unused.jpg", "questions": [], "answers": []}  # not needed
    files["ocrvqa-dataset-json"] = json.dumps(dataset).encode()

    text = {"id": "sharegpt-1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    plan.add("finetune", text)
    plan.add("finetune", {**text, "id": "sharegpt-2"}, "duplicate")
    plan.add("finetune", {"id": "bad", "conversations": [{"from": "gpt", "value": "no question"}]}, "malformed_record")
    files["mix665k-json"] = json.dumps(plan.records["finetune"]).encode()

    # Everything else (eval kit, benchmark files): small stand-ins holding whatever the links need.
    link_targets = [PurePosixPath(t) for t in data_cfg["links"].values()]
    for src in data_cfg["sources"]:
        name, dest = src["name"], PurePosixPath(src["dest"])
        if name in files or name in archives:
            continue
        if src["unpack"] == "none":
            files[name] = image_bytes(next(seed)) if dest.suffix == ".jpg" else b'{"stand-in": true}\n'
            continue
        members = {f"{dest.name}/README.txt": b"scaled-down stand-in\n"}
        for target in link_targets:
            if target == dest or dest in target.parents:
                inner = target.relative_to(dest)
                key = str(PurePosixPath(dest.name, inner)) + ("" if inner.suffix else "/placeholder.jpg")
                members[key] = image_bytes(next(seed)) if key.endswith(".jpg") else b"{}\n"
        archives[name] = members

    served = []
    for src in data_cfg["sources"]:
        name = src["name"]
        data = files[name] if name in files else zip_bytes(archives[name])
        path = root / mirror_path(src["url"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        served.append("/" + mirror_path(src["url"]))
    return {"expect": {part: dict(c) for part, c in plan.expect.items()}, "ocr": ocr, "files": served}
