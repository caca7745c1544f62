"""``llava-core inspect``: prompts, ids, labels and the decoded supervised runs of records."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest
from tiny_tokenizers import CORPUS, plain_tokenizer

from llava_core.cli import main
from llava_core.data.inspect import inspect_records, load_tokenizer, supervised_runs
from llava_core.data.tokenize import IGNORE_INDEX
from llava_core.io import FormatError
from llava_core.model.tiny import train_tokenizer

RECORDS = [
    {"id": "img", "image": "x.png", "conversations": [
        {"from": "human", "value": "What color is the shape?\n<image>"}, {"from": "gpt", "value": "Red"},
        {"from": "human", "value": "And the background?"}, {"from": "gpt", "value": "a gray background"}]},
    {"id": "text", "conversations": [{"from": "human", "value": "Say 2"}, {"from": "gpt", "value": "2"}]},
]
CAPTION = [{"id": "cap", "image": "y.png", "conversations": [
    {"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "a red circle"}]}]


@pytest.fixture(scope="module", params=["with_image_token", "without_image_token"])
def tokenizer_dir(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    tok = train_tokenizer(CORPUS, 300) if request.param == "with_image_token" else plain_tokenizer()
    tok.save_pretrained(d)
    return d


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps(RECORDS))
    return path


def test_vicuna_supervises_each_answer_and_its_eos(records, tokenizer_dir):
    rows = list(inspect_records(records, "vicuna_v1", tokenizer_dir, 512, 4))
    assert [r["id"] for r in rows] == ["img", "text"]
    answers = [[" Red</s>", " a gray background</s>"], [" 2</s>"]]
    for row, want in zip(rows, answers, strict=True):
        assert row["supervised"] == want
        assert row["prompt"].startswith("A chat between a curious user")
        assert len(row["input_ids"]) == len(row["labels"]) and not row["truncated"]
    img = rows[0]
    assert "USER: <image>\nWhat color is the shape? ASSISTANT: Red</s>" in img["prompt"]
    image_id = load_tokenizer(tokenizer_dir).convert_tokens_to_ids("<image>")
    positions = [i for i, t in enumerate(img["input_ids"]) if t == image_id]
    assert len(positions) == 4 and positions == list(range(positions[0], positions[0] + 4))
    assert all(img["labels"][i] == IGNORE_INDEX for i in positions)
    assert image_id not in rows[1]["input_ids"]
    assert img["tokens"].count("<image>x4") == 1 and "<image>" not in img["tokens"]
    assert len(img["tokens"]) == len(img["input_ids"]) - 3


def test_plain_supervises_the_caption_and_newline(tmp_path, tokenizer_dir):
    path = tmp_path / "cap.json"
    path.write_text(json.dumps(CAPTION))
    (row,) = inspect_records(path, "plain", tokenizer_dir, 64, 4)
    assert row["prompt"] == "<image>a red circle\n"
    assert row["supervised"] == ["a red circle\n"]


def test_truncation_and_bad_records_are_reported(records, tmp_path, tokenizer_dir):
    full = list(inspect_records(records, "vicuna_v1", tokenizer_dir, 512, 4))
    assert full[0]["num_text_tokens"] == len(full[0]["input_ids"]) - 3  # the image counted once
    cut = len(full[0]["input_ids"]) - 3  # inside the last answer
    rows = list(inspect_records(records, "vicuna_v1", tokenizer_dir, cut, 4, truncation="expanded"))
    assert rows[0]["truncated"] and rows[0]["labels"] == full[0]["labels"][:cut]
    assert rows[0]["supervised"][0] == " Red</s>" and len(rows[0]["supervised"]) == 2
    assert rows[1]["truncated"] == (len(full[1]["input_ids"]) > cut)
    # The default (the released checkpoints' rule) counts the image once: the same cut of the text
    # leaves the 3 extra image positions in.
    text_cut = list(inspect_records(records, "vicuna_v1", tokenizer_dir, cut - 3, 4))
    assert text_cut[0]["truncated"] and text_cut[0]["input_ids"] == rows[0]["input_ids"]
    with pytest.raises(FormatError, match="image block"):
        list(inspect_records(records, "vicuna_v1", tokenizer_dir, 40, 4, truncation="expanded"))
    with pytest.raises(FormatError, match="image block"):  # the image token itself is cut off
        list(inspect_records(records, "vicuna_v1", tokenizer_dir, 40, 4))
    with pytest.raises(FormatError, match=r"record 0 \(id='img'\).*plain"):
        list(inspect_records(records, "plain", tokenizer_dir, 64, 4))
    with pytest.raises(ValueError, match="unknown conversation template"):
        list(inspect_records(records, "nope", tokenizer_dir, 64, 4))


def test_image_tokens_default_to_the_checkpoint_config(records, tmp_path, tokenizer_dir):
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tokenizer_dir, ckpt)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llava", "image_seq_length": 3}))
    first = next(iter(inspect_records(records, "vicuna_v1", ckpt, 512)))
    base = next(iter(inspect_records(records, "vicuna_v1", tokenizer_dir, 512, 1)))
    assert len(first["input_ids"]) == len(base["input_ids"]) + 2


def test_supervised_runs_split_on_gaps():
    ids = [1, 2, 3, 4, 5, 6]
    labels = [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5, 6]
    assert supervised_runs(ids, labels) == [[2, 3], [5, 6]]
    assert supervised_runs([], []) == []


def test_cli_prints_one_json_line_per_record(records, tokenizer_dir, capsys):
    assert main(["inspect", "--records", str(records), "--template", "vicuna_v1", "--tokenizer",
                 str(tokenizer_dir), "--num-image-tokens", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [NS(**r).id for r in lines] == ["img", "text"]
    assert set(lines[0]) >= {"id", "prompt", "input_ids", "labels", "supervised"}
    assert main(["inspect", "--records", str(records), "--template", "plain", "--tokenizer",
                 str(tokenizer_dir)]) == 2
