"""Source config validation: bad entries fail before any download, naming the key and value."""

from __future__ import annotations

import pytest

from llava_core.prepare.sources import (
    NoMirrorError,
    Source,
    check_links,
    hub_url,
    resolve_url,
    sources_from_config,
)

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
    # The global mirror keeps host and path (wget -x layout): three sources named images.zip coexist.
    assert resolve_url(src, "http://mirror.local/llava/") == "http://mirror.local/llava/hf.example/repo/resolve/main/images.zip"
    src.mirror = "file:///data/cache"  # a per-source mirror serves the file under its own name, and wins
    assert resolve_url(src, "http://mirror.local/llava") == "file:///data/cache/images.zip"


def test_relative_urls_need_a_base_or_mirror() -> None:
    (src,) = sources_from_config([_item(url="eval.zip", dest="eval", unpack="zip")])
    assert resolve_url(src, base_url="http://m.local/kit/") == "http://m.local/kit/eval.zip"
    assert resolve_url(src, mirror="http://m.local") == "http://m.local/eval.zip"
    with pytest.raises(NoMirrorError, match="put its contents at 'eval'"):
        resolve_url(src)
    with pytest.raises(ValueError, match="'url'"):
        sources_from_config([_item(url="../eval.zip")])


def test_hub_paths_become_resolve_urls() -> None:
    (src,) = sources_from_config([_item(url="hf://datasets/liuhaotian/LLaVA-Pretrain/images.zip")])
    assert src.url == "https://huggingface.co/datasets/liuhaotian/LLaVA-Pretrain/resolve/main/images.zip"
    assert hub_url("hf://models/openai/clip-vit-large-patch14-336/config.json@abc123") == \
        "https://huggingface.co/openai/clip-vit-large-patch14-336/resolve/abc123/config.json"
    with pytest.raises(ValueError, match="hf://datasets/<owner>/<repo>/<file path>"):
        hub_url("hf://datasets/only-owner")


def test_links_are_checked() -> None:
    links = {"eval/pope/val2014": "benchmarks/coco/val2014"}
    assert check_links(links) == links
    for bad, needle in [({"/abs": "x"}, "link must be a relative path"), ({"a": "../x"}, "target must be"),
                        ({"a": "a/b"}, "inside the link"), (["a"], "mapping")]:
        with pytest.raises(ValueError, match=needle):
            check_links(bad)  # type: ignore[arg-type]
