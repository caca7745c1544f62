"""The symbolic context of one COCO image, as the authors' few-shot ``NNN_caps.txt`` files show it:
the captions, one per line, then (for the kinds that use boxes) a blank line and one line per
object, ``category: [x1, y1, x2, y2]``, the corners as fractions of the image side rounded to three
decimals and printed as Python prints a float (``0.0``, ``0.44``, ``0.574``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImageFacts:
    """What the teacher is told about one image."""

    image_id: int
    file_name: str
    width: int
    height: int
    captions: list[str] = field(default_factory=list)
    boxes: list[tuple[str, list[float]]] = field(default_factory=list)  # (category, COCO [x, y, w, h])


def box_line(category: str, bbox: list[float], width: int, height: int) -> str:
    """``category: [x1, y1, x2, y2]`` for a COCO ``[x, y, w, h]`` box in pixels."""
    x, y, w, h = bbox
    corners = [x / width, y / height, (x + w) / width, (y + h) / height]
    return f"{category}: [{', '.join(repr(round(v, 3)) for v in corners)}]"


def symbolic_context(facts: ImageFacts, with_boxes: bool) -> str:
    """The context text of ``facts``: captions, then (``with_boxes``) a blank line and the box lines."""
    text = "\n".join(c.strip() for c in facts.captions)
    if with_boxes and facts.boxes:
        text += "\n\n" + "\n".join(box_line(cat, bbox, facts.width, facts.height) for cat, bbox in facts.boxes)
    return text


def coco_facts(captions_json: dict, instances_json: dict | None = None) -> dict[int, ImageFacts]:
    """Per image id, the captions of a COCO ``captions_*.json`` and the boxes of the matching
    ``instances_*.json``, both in the files' order."""
    facts = {img["id"]: ImageFacts(img["id"], img["file_name"], img["width"], img["height"])
             for img in captions_json["images"]}
    for ann in captions_json["annotations"]:
        if ann["image_id"] in facts:
            facts[ann["image_id"]].captions.append(ann["caption"])
    if instances_json is not None:
        names = {c["id"]: c["name"] for c in instances_json["categories"]}
        for ann in instances_json["annotations"]:
            if ann["image_id"] in facts:
                facts[ann["image_id"]].boxes.append((names[ann["category_id"]], ann["bbox"]))
    return facts
