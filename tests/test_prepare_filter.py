"""Record filtering: broken images and duplicates are dropped with reasons; the rest stays valid."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import ImageFile
from real_layout import image_bytes

from llava_core.data.formats import read_llava_records
from llava_core.io import FormatError
from llava_core.prepare.filter import check_image, filter_records, write_manifest


def _image_bytes(fmt: str, seed: int = 0) -> bytes:
    return image_bytes(seed, fmt, (48, 64))


def _conv(q: str, a: str) -> list[dict]:
    return [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "playground"
    (root / "coco").mkdir(parents=True)
    jpg, png = _image_bytes("JPEG"), _image_bytes("PNG", 1)
    files = {
        "coco/good.jpg": jpg,
        "coco/good.png": png,
        "coco/gif_named.jpg": _image_bytes("GIF", 2),  # OCR-VQA saves some GIFs as .jpg: PIL copes
        "coco/empty.jpg": b"",
        "coco/trunc.jpg": jpg[: len(jpg) // 2],
        "coco/trunc.png": png[: len(png) // 2],
        "coco/corrupt.jpg": b"this is not an image" * 10,
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    records = [
        {"id": "g1", "image": "coco/good.jpg", "conversations": _conv("What?", "A cat.")},
        {"id": "g2", "image": "coco/good.png", "conversations": _conv("What?", "A dog.")},
        {"id": "g3", "image": "coco/gif_named.jpg", "conversations": _conv("Title?", "Dune")},
        {"id": "miss", "image": "coco/missing.jpg", "conversations": _conv("What?", "x")},
        {"id": "empty", "image": "coco/empty.jpg", "conversations": _conv("What?", "x")},
        {"id": "tj", "image": "coco/trunc.jpg", "conversations": _conv("What?", "x")},
        {"id": "tp", "image": "coco/trunc.png", "conversations": _conv("What?", "x")},
        {"id": "bad", "image": "coco/corrupt.jpg", "conversations": _conv("What?", "x")},
        {"id": "g1-dup", "image": "coco/good.jpg", "conversations": _conv("What?", "A cat.")},
        {"id": "g1-other-q", "image": "coco/good.jpg", "conversations": _conv("Color?", "Black.")},
        {"id": "text", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"id": "text-dup", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"id": "miss-2", "image": "coco/missing.jpg", "conversations": _conv("Why?", "y")},
    ]
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(records))
    return path, root


def test_check_image_reasons(world: tuple[Path, Path]) -> None:
    root = world[1] / "coco"
    assert check_image(str(root / "good.jpg")) is None
    assert check_image(str(root / "good.png")) is None
    assert check_image(str(root / "missing.jpg")) == "missing_image"
    assert check_image(str(root)) == "missing_image"  # a folder is not an image
    assert check_image(str(root / "empty.jpg")) == "empty_image"
    assert check_image(str(root / "trunc.jpg")) == "truncated_image"
    assert check_image(str(root / "trunc.png")) == "truncated_image"
    assert check_image(str(root / "corrupt.jpg")) == "corrupt_image"


@pytest.mark.parametrize("workers", [1, 2])
def test_filter_drops_bad_images_and_duplicates(world: tuple[Path, Path], tmp_path: Path, workers: int) -> None:
    records_path, root = world
    out = tmp_path / "out" / "mix.filtered.json"
    manifest = filter_records(records_path, root, out, workers=workers)

    kept = read_llava_records(out)  # valid LLaVA JSON, same format
    assert [r["id"] for r in kept] == ["g1", "g2", "g3", "g1-other-q", "text"]
    assert "image" not in kept[-1]
    assert manifest["kept"] == 5 and manifest["dropped"] == 8
    assert manifest["reasons"] == {"corrupt_image": 1, "duplicate": 2, "empty_image": 1, "missing_image": 2,
                                   "truncated_image": 2}
    assert manifest["dropped_examples"]["missing_image"] == ["miss", "miss-2"]
    assert manifest["dropped_examples"]["truncated_image"] == ["tj", "tp"]
    assert manifest["dropped_examples"]["duplicate"] == ["g1-dup", "text-dup"]
    assert manifest["input"] == str(records_path) and manifest["output"] == str(out)
    assert manifest["input_sha256"] == hashlib.sha256(records_path.read_bytes()).hexdigest()
    assert manifest["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # Atomic writes left no temp file; every dropped record is listed with its reason.
    assert sorted(p.name for p in out.parent.iterdir()) == ["mix.filtered.dropped.jsonl", out.name]
    drops = [json.loads(line) for line in (out.parent / "mix.filtered.dropped.jsonl").read_text().splitlines()]
    assert [(d["record"], d["id"], d["reason"]) for d in drops][:3] == [
        (3, "miss", "missing_image"), (4, "empty", "empty_image"), (5, "tj", "truncated_image")]
    assert len(drops) == 8 and drops[0]["image"] == "coco/missing.jpg"
    assert manifest["records"] == 13 and manifest["images"] == {"distinct": 8, "unusable": 5}


def test_switches_and_global_truncation_flag(world: tuple[Path, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    records_path, root = world
    everything = filter_records(records_path, root, tmp_path / "a.json", dedupe=False, check_images=False)
    assert everything["kept"] == 13 and everything["reasons"] == {}

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as training code often sets it
    manifest = filter_records(records_path, root, tmp_path / "b.json", dedupe=False)
    assert manifest["reasons"]["truncated_image"] == 2 and "duplicate" not in manifest["reasons"]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_malformed_records_are_dropped_and_named_by_file_and_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    good = {"id": "ok", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    path.write_text(json.dumps([good, {"id": "x", "conversations": [{"from": "gpt", "value": "a"}]}, 7, good]))
    manifest = filter_records(path, tmp_path, tmp_path / "out.json", progress=False)
    assert [r["id"] for r in read_llava_records(tmp_path / "out.json")] == ["ok"]
    assert manifest["reasons"] == {"duplicate": 1, "malformed_record": 2}
    assert manifest["malformed_examples"][0].startswith(f"{path}: record 1 (id='x') turn 0: 'from' is 'gpt'")
    assert manifest["malformed_examples"][1] == f"{path}: record 2: expected an object, got int"
    drops = [json.loads(line) for line in (tmp_path / "out.dropped.jsonl").read_text().splitlines()]
    assert [(d["record"], d["reason"]) for d in drops] == [(1, "malformed_record"), (2, "malformed_record"),
                                                            (3, "duplicate")]


@pytest.mark.parametrize(("text", "needle"), [("", "the file is empty"), ('{"id": 1}', "expected a JSON list"),
                                              ('[{"id": 1, "conversations": [', "invalid JSON in record 0")])
def test_a_broken_records_file_stops_with_its_name(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "cut.json"
    path.write_text(text)
    with pytest.raises(FormatError, match=needle) as exc:
        filter_records(path, tmp_path, tmp_path / "out.json", progress=False)
    assert str(path) in str(exc.value)
    assert not (tmp_path / "out.json").exists()


def test_write_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifests" / "filter.json"
    write_manifest(path, {"mix665k": {"kept": 1}, "lcs558k": {"kept": 2}})
    assert json.loads(path.read_text()) == {"lcs558k": {"kept": 2}, "mix665k": {"kept": 1}}
