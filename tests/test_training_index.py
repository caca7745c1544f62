"""The training index (llava_core/data/index.py): the filtered sets as memory-mapped Arrow folders.

Records round-trip exactly; the precomputed lengths follow upstream's ``modality_lengths`` rule;
the sampler sees the same lengths (so the same order) as from a list of records; a build that
fails leaves nothing that looks complete; a filtered folder without an index says how to make it.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_tokenizers import plain_tokenizer

from llava_core.data import index as index_mod
from llava_core.data.dataset import SupervisedDataset
from llava_core.data.formats import read_llava_records
from llava_core.data.images import image_processor_class
from llava_core.data.index import (
    MissingIndexError,
    TrainingIndex,
    TrainingIndexWriter,
    index_path,
    modality_length,
    open_training_index,
    training_index_from_records,
    write_training_index,
)
from llava_core.data.tokenize import make_tokenizer_for_llava
from llava_core.prepare.filter import filter_records
from llava_core.train.sampler import ModalityLengthSampler


def _conv(*turns: str) -> list[dict]:
    return [{"from": ("human", "gpt")[k % 2], "value": v} for k, v in enumerate(turns)]


RECORDS = [
    {"id": "img-1", "image": "coco/train2017/000000000001.jpg",
     "conversations": _conv("<image>\nWhat is  in the\timage?", "A cat on a mat.")},
    {"id": "text-1", "conversations": _conv("Tell me a joke.", "Why did the chicken cross the road?",
                                            "Why?", "To get to the other side.")},
    {"id": 7, "image": "ocr_vqa/images/b.jpg", "model": "sharegpt4v", "score": 0.25, "flags": [True, None, 3],
     "meta": {"source": "vg", "bbox": [0.1, 0.2, 0.3, 0.4], "nested": {"k": []}},
     "conversations": _conv("Who wrote this book?\n<image>", "Jane   Austen")},
    {"id": "unicode", "image": "gqa/images/日本語 ✓.jpg",
     "conversations": _conv("<image>\nQu'est-ce que c'est ? 这是什么？ 🐈‍⬛", "Ünïcödé \"quotes\" \\ back\nslash\u2028é")},
    {"conversations": _conv("no id, text only", "ok")},
    {"id": "empty-answer", "conversations": _conv("", "")},  # zero words: length 0 (counted as an image record)
]
# The rule by hand: whitespace-split words over every turn (so "<image>" is a word, and \t, \n and
# U+2028 separate words), positive with an image, negative without.
HAND_LENGTHS = [6 + 5, -(4 + 7 + 1 + 6), 5 + 2, 7 + 6, -(4 + 1), 0]


def _sampler_order(lengths, seed=0) -> list[int]:
    sampler = ModalityLengthSampler(lengths, per_device_batch=4, world_size=2, grad_accum=2, seed=seed)
    sampler.set_epoch(1)
    return list(sampler)


def test_round_trip_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "filtered" / "pretrain.arrow"
    assert write_training_index(iter(RECORDS), path) == len(RECORDS)  # a stream is enough
    assert sorted(p.name for p in path.parent.iterdir()) == ["pretrain.arrow"]  # no temporary leftovers
    index = open_training_index(path)
    assert isinstance(index, TrainingIndex) and len(index) == len(RECORDS)
    for i, rec in enumerate(RECORDS):
        got = index[i]
        assert got == rec
        assert list(got) == list(rec)  # key order too
        assert json.dumps(got, ensure_ascii=False) == json.dumps(rec, ensure_ascii=False)
    assert list(index) == RECORDS
    assert index[-1] == RECORDS[-1] and index[1:3] == RECORDS[1:3]
    with pytest.raises(IndexError):
        index[len(RECORDS)]
    assert index.images() == [r.get("image") for r in RECORDS]
    assert index.dataset.column_names == ["record", "image", "has_image", "modality_length"]
    assert index.dataset["has_image"] == ["image" in r for r in RECORDS]


def test_index_is_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "finetune.arrow"
    write_training_index(RECORDS, path)
    index = open_training_index(path)
    files = [f["filename"] for f in index.dataset.cache_files]
    assert files and all(Path(f).parent == path for f in files)  # backed by the folder's Arrow files
    from datasets.table import InMemoryTable

    assert not isinstance(index.dataset.data, InMemoryTable)
    blob = pickle.dumps(index)  # as to spawned DataLoader workers: by file path, not by content
    assert len(blob) < 20_000
    assert list(pickle.loads(blob)) == RECORDS


def test_lengths_follow_upstreams_rule() -> None:
    assert [modality_length(r) for r in RECORDS] == HAND_LENGTHS
    assert training_index_from_records(RECORDS).modality_lengths() == HAND_LENGTHS


def test_lengths_from_disk_equal_the_rule_and_the_list(tmp_path: Path) -> None:
    write_training_index(RECORDS, tmp_path / "p.arrow")
    index = open_training_index(tmp_path / "p.arrow")
    assert index.modality_lengths() == HAND_LENGTHS
    kw = {"template": "plain", "aspect": "pad", "tokenizer": None, "image_processor": None,
          "num_image_tokens": 4, "max_length": 64}
    from_index = SupervisedDataset(index, tmp_path, **kw)
    from_list = SupervisedDataset(list(RECORDS), tmp_path, **kw)
    assert from_index.modality_lengths() == from_list.modality_lengths() == HAND_LENGTHS
    assert len(from_index) == len(from_list) == len(RECORDS)


def _random_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = "a red circle on gray what is the shape colour of this ok".split()
    out = []
    for i in range(n):
        turns = [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(2 * rng.randint(1, 3))]
        rec = {"id": f"r{i}", "conversations": _conv(*turns)}
        if rng.random() < 0.8:
            rec = {"id": rec["id"], "image": f"img/{rng.randrange(50)}.png", "conversations": rec["conversations"]}
            rec["conversations"][0]["value"] = "<image>\n" + rec["conversations"][0]["value"]
        out.append(rec)
    return out


def test_sampler_order_from_the_index_equals_the_order_from_a_list(tmp_path: Path) -> None:
    records = _random_records(700)
    write_training_index(records, tmp_path / "f.arrow")
    index = open_training_index(tmp_path / "f.arrow")
    kw = {"template": "plain", "aspect": "pad", "tokenizer": None, "image_processor": None,
          "num_image_tokens": 4, "max_length": 64}
    lengths_index = SupervisedDataset(index, tmp_path, **kw).modality_lengths()
    lengths_list = SupervisedDataset(records, tmp_path, **kw).modality_lengths()
    assert lengths_index == lengths_list
    assert {x > 0 for x in lengths_index} == {True, False}  # both modalities present
    for seed in (0, 5):
        order = _sampler_order(lengths_index, seed)
        assert order == _sampler_order(lengths_list, seed)
        assert sorted(order) == list(range(len(records)))


def test_samples_from_the_index_equal_samples_from_a_list(tmp_path: Path) -> None:
    for k, colour in enumerate(("red", "blue")):
        Image.new("RGB", (40, 24), colour).save(tmp_path / f"{k}.png")
    records = [{"id": "a", "image": "0.png", "conversations": _conv("<image>\nWhat colour?", "Red")},
               {"id": "b", "conversations": _conv("What is the shape?", "A circle on a gray background")},
               {"id": "c", "image": "1.png", "conversations": _conv("What colour?\n<image>", "Blue", "Sure?", "Yes")}]
    write_training_index(records, tmp_path / "f.arrow")
    proc = image_processor_class()(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    kw = {"template": "vicuna_v1", "aspect": "pad", "tokenizer": make_tokenizer_for_llava(plain_tokenizer()),
          "image_processor": proc, "num_image_tokens": 4, "max_length": 256}
    from_index = SupervisedDataset(open_training_index(tmp_path / "f.arrow"), tmp_path, **kw)
    from_list = SupervisedDataset(records, tmp_path, **kw)
    for i in range(len(records)):
        a, b = from_index[i], from_list[i]
        assert a.keys() == b.keys()
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
        assert (a["pixel_values"] is None) == (b["pixel_values"] is None) == ("image" not in records[i])
        if a["pixel_values"] is not None:
            assert torch.equal(a["pixel_values"], b["pixel_values"])


def _failing(records, after: int):
    for i, rec in enumerate(records):
        if i == after:
            raise RuntimeError("killed mid-write")
        yield rec


def test_interrupted_build_leaves_no_index(tmp_path: Path) -> None:
    out = tmp_path / "filtered"
    out.mkdir()
    records = _random_records(5000)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_training_index(_failing(records, 4500), out / "pretrain.arrow")  # after some batches were written
    assert list(out.iterdir()) == []  # neither the index nor a temporary folder


def test_failure_while_saving_leaves_no_index_and_keeps_the_old_one(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "pretrain.arrow"
    write_training_index(RECORDS[:2], path)
    import datasets

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_training_index(RECORDS, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrain.arrow"]
    assert list(open_training_index(path)) == RECORDS[:2]  # the previous, complete index
    monkeypatch.undo()
    with pytest.raises(RuntimeError):
        with TrainingIndexWriter(tmp_path / "other.arrow") as writer:
            writer.add(RECORDS[0])
            raise RuntimeError("the caller failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrain.arrow"]


def test_missing_index_says_to_rerun_the_filter(tmp_path: Path) -> None:
    filtered = tmp_path / "filtered"
    filtered.mkdir()
    (filtered / "pretrain.json").write_text(json.dumps(RECORDS))  # a folder of an older version
    with pytest.raises(MissingIndexError, match=r"rerun.*--forcerun filter") as e:
        open_training_index(filtered / "pretrain.arrow")
    assert "older version" in str(e.value) and "pretrain.json" in str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    (filtered / "finetune.arrow").mkdir()  # a folder that is not a saved dataset
    with pytest.raises(MissingIndexError, match="filter"):
        open_training_index(filtered / "finetune.arrow")


def test_a_json_path_gives_an_in_memory_index(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps(RECORDS, ensure_ascii=False))
    index = open_training_index(path)
    assert list(index) == read_llava_records(path) == RECORDS
    assert index.modality_lengths() == HAND_LENGTHS
    assert training_index_from_records([]).modality_lengths() == []


def test_index_path() -> None:
    assert index_path(Path("/d/filtered/pretrain.json")) == Path("/d/filtered/pretrain.arrow")


def test_filter_writes_the_index_of_its_kept_records(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (8, 8), "red").save(root / "ok.png")
    # Every image record points at the one good image; then a missing image and a duplicate.
    records = [r | {"image": "ok.png"} if "image" in r else r for r in RECORDS]
    records += [{"id": "miss", "image": "nope.png", "conversations": _conv("<image>\nx", "y")}, records[1]]
    src = tmp_path / "mix.json"
    src.write_text(json.dumps(records, ensure_ascii=False))
    out = tmp_path / "filtered" / "finetune.json"
    manifest = filter_records(src, root, out, index_path=index_path(out), progress=False)
    assert manifest["dropped"] == 2  # the missing image and the duplicate
    kept = read_llava_records(out)
    index = open_training_index(index_path(out))
    assert len(index) == manifest["kept"] == len(kept)
    assert list(index) == kept
    assert index.modality_lengths() == [modality_length(r) for r in kept]


def test_filter_interrupted_leaves_neither_file_nor_index(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "mix.json"
    src.write_text(json.dumps(_random_records(3000)))
    add = index_mod.TrainingIndexWriter.add

    def dying_add(self, rec, text=None):
        if self.count == 2500:
            raise KeyboardInterrupt  # as a killed job
        add(self, rec, text)

    monkeypatch.setattr(index_mod.TrainingIndexWriter, "add", dying_add)
    out = tmp_path / "filtered" / "pretrain.json"
    with pytest.raises(KeyboardInterrupt):
        filter_records(src, tmp_path, out, check_images=False, index_path=index_path(out), progress=False)
    assert list(out.parent.iterdir()) == []
