"""What the tiny world gives a teacher to regenerate LLaVA-Instruct from (docs/instruct.md): COCO-style
``captions_train2017.json`` and ``instances_train2017.json`` for its stage-2 images under
``coco/train2017``, and a prompt folder in the authors' ``playground/data/prompts`` layout, with
texts of our own (the real preset fetches the authors' files, pinned and checksummed)."""

from __future__ import annotations

from pathlib import Path

from llava_core.io import atomic_write, write_json
from llava_core.prepare.instruct.context import box_line
from llava_core.synthetic.scenes import SHAPES, Scene
from llava_core.synthetic.training import CAPTIONS, caption_words

#: The folder of the stage-2 images that COCO annotates (as mix665k's ``coco/train2017``).
COCO_FOLDER = "coco/train2017"
CAPTIONS_JSON = "annotations/captions_train2017.json"
INSTANCES_JSON = "annotations/instances_train2017.json"
PROMPTS = "prompts"

SYSTEMS = {
    "conversation": "You are an assistant who sees an image only through five sentences describing it. "
                    "Write a conversation about the image between a person asking and an assistant answering, "
                    "as if the assistant saw the image. Ask only what the sentences answer with certainty.",
    "detail_description": "You are an assistant who sees an image only through five sentences describing it and "
                          "the boxes of its objects, (x1, y1, x2, y2) as fractions of the image side. Describe "
                          "the image in detail without quoting coordinates.",
    "complex_reasoning": "You are an assistant who sees an image only through five sentences describing it and "
                         "the boxes of its objects. Ask a question that needs reasoning about the image, and "
                         "answer it step by step, as if you saw the image.",
}


def _captions(s: Scene) -> list[str]:
    """Five captions of ``s``, one per template, as COCO's five human captions."""
    return [t.format(**caption_words(s)).capitalize() + "." for t in CAPTIONS]


def _bbox(s: Scene, side: int) -> list[float]:
    """The shape's COCO ``[x, y, w, h]`` in pixels of a ``side``-pixel square image."""
    half = s.size / 2
    return [round((s.cx - half) * side, 2), round((s.cy - half) * side, 2), round(s.size * side, 2),
            round(s.size * side, 2)]


def write_instruct_sources(root: Path, scenes: dict[str, Scene], image_size: int) -> dict[str, int]:
    """Write the annotations of every non-blank image under :data:`COCO_FOLDER` of ``scenes`` (path
    in the stage-2 records -> scene) and the prompt folder under ``root``; return the counts."""
    images, caps, boxes = [], [], []
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    cat_id = {c["name"]: c["id"] for c in categories}
    for rel, s in sorted(scenes.items()):
        if not rel.startswith(COCO_FOLDER + "/") or s.blank:
            continue
        image_id = int(Path(rel).stem)  # coco/train2017/000000123456.jpg
        images.append({"id": image_id, "file_name": Path(rel).name, "width": image_size, "height": image_size})
        caps += [{"id": len(caps) + 1, "image_id": image_id, "caption": c} for c in _captions(s)]
        bbox = _bbox(s, image_size)
        boxes.append({"id": len(boxes) + 1, "image_id": image_id, "category_id": cat_id[s.shape], "bbox": bbox,
                      "area": round(bbox[2] * bbox[3], 2), "iscrowd": 0})
    write_json(root / CAPTIONS_JSON, {"images": images, "annotations": caps})
    write_json(root / INSTANCES_JSON, {"images": images, "annotations": boxes, "categories": categories})
    _write_prompts(root / PROMPTS, image_size)
    return {"images": len(images), "captions": len(caps), "boxes": len(boxes)}


def _write_prompts(folder: Path, side: int) -> None:
    """One few-shot pair per kind, about a fixed example scene, in the authors' file layout."""
    example = Scene("circle", "red", "gray", 0.4, 0.45, 0.7)
    captions = "\n".join(_captions(example))
    boxed = captions + "\n\n" + box_line(example.shape, _bbox(example, side), side, side)
    replies = {
        "conversation": "Question:\nWhat shape is in the image?\n===\nAnswer:\nThe image shows a red circle.\n===\n"
                        "Question:\nWhat color is the background?\n===\nAnswer:\nThe background is gray.",
        "detail_description": "The image shows a large red circle on a plain gray background. The circle fills "
                              "most of the picture and sits slightly to the left of the center.",
        "complex_reasoning": "Question:\nWould the circle stand out to someone looking at the image?\n===\nAnswer:\n"
                             "Yes. The circle is a strong red and covers most of the picture, while the "
                             "background is a plain gray, so the circle is the first thing one notices.",
    }
    for kind, system in SYSTEMS.items():
        for name, text in (("system_message.txt", system), ("000_caps.txt", boxed if kind != "conversation" else captions),
                           ("000_conv.txt", replies[kind])):
            with atomic_write(folder / kind / name) as fh:
                fh.write(text + "\n")
