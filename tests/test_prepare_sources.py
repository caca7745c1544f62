"""Source config validation: bad entries fail before any download, naming the key and value."""

from __future__ import annotations

import pytest

from llava_core.prepare.sources import Source, resolve_url, sources_from_config

SHA = "a" * 64


def _item(**over: object) -> dict:
    item: dict = {"name": "coco", "url": "https://example.org/zips/train2017.zip", "dest": "coco/train2017"}
    item.update(over)
    return item


def test_valid_config_builds_sources() -> None:
    (src,) = sources_from_config([_item(sha256=SHA.upper(), size=10, unpack="zip")])
    assert src == Source("coco", "https://example.org/zips/train2017.zip", "coco/train2017", SHA, 10, "zip")
    assert src.filename == "train2017.zip"


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"checksum": SHA}, "unknown key(s) ['checksum']"),
        ({"url": "ftp://example.org/a.zip"}, "'url'"),
        ({"url": "https://example.org/"}, "must end in a file name"),
        ({"dest": "../outside"}, "'dest' must stay inside"),
        ({"dest": "/abs/path"}, "'dest' must stay inside"),
        ({"sha256": "abc"}, "'sha256'"),
        ({"size": -1}, "'size'"),
        ({"size": "10"}, "'size'"),
        ({"unpack": "rar"}, "'unpack' must be one of"),
        ({"mirror": "not a url"}, "'mirror'"),
        ({"name": "bad/name"}, "'name'"),
    ],
)
def test_bad_values_are_named(over: dict, needle: str) -> None:
    with pytest.raises(ValueError, match="sources\\[1\\]") as exc:
        sources_from_config([_item(name="ok", dest="ok"), _item(**over)])
    assert needle in str(exc.value)


def test_missing_key_and_duplicates() -> None:
    item = _item()
    del item["url"]
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['url'\]"):
        sources_from_config([item])
    with pytest.raises(ValueError, match="used twice"):
        sources_from_config([_item(), _item(dest="other")])
    with pytest.raises(ValueError, match="overlapping dest"):
        sources_from_config([_item(name="a", dest="vg"), _item(name="b", dest="vg/VG_100K")])
    with pytest.raises(ValueError, match="list of mappings"):
        sources_from_config({"name": "x"})  # type: ignore[arg-type]


def test_mirror_resolution() -> None:
    src = Source("a", "https://hf.example/repo/resolve/main/images.zip?download=true", "a")
    assert resolve_url(src) == src.url
    assert resolve_url(src, "http://mirror.local/llava/") == "http://mirror.local/llava/images.zip"
    src.mirror = "file:///data/cache"
    assert resolve_url(src, "http://mirror.local/llava") == "file:///data/cache/images.zip"
