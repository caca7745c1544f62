"""The real LLaVA-1.5 preset's download and filter stages, run by Snakemake against a mirror on
127.0.0.1 that serves a scaled-down copy of the real layouts (see ``real_layout.py``)."""

from __future__ import annotations

import json
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run
from http_util import serving
from llama_vocab import original_ids, raw_tokenizer, write_tokenizer_folder
from PIL import Image
from real_layout import build_mirror

from llava_core.data.conversation import render

EXPERIMENT = "llava-v1.5-7b"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture
def mirror(tmp_path: Path):
    root = tmp_path / "mirror"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.requests = []  # type: ignore[attr-defined]
    with serving(server):
        yield root, server, f"http://127.0.0.1:{server.server_address[1]}"


def _data_config(overrides: list[str]) -> dict:
    args = ["python", "-m", "llava_core.cli", "config", EXPERIMENT, "--stage", "filter"]
    for o in overrides:
        args += ["-o", o]
    return json.loads(run(args).stdout)["config"]["data"]


def test_real_preset_downloads_verifies_filters_and_reports_from_a_local_mirror(tmp_path: Path, mirror) -> None:
    root, server, base = mirror
    data = _data_config([])
    # A scaled-down copy cannot match the bytes pinned for the real files (POPE's three JSONs).
    overrides = [f"data.sources.{i}.{key}=null" for i, src in enumerate(data["sources"])
                 if src["sha256"] or src["size"] is not None for key in ("sha256", "size")]
    assert overrides, "the preset pins some checksums"
    overrides.append(f"data.mirror={base}")
    # The filter counts what each truncation rule would cut with the model's tokenizer: Vicuna's
    # real vocabulary (rebuilt offline, legacy: false as on the hub) and a short length, so both
    # rules cut something.
    max_length = 48
    overrides += [f"model.llm={write_tokenizer_folder(tmp_path / 'vicuna-tokenizer', legacy=False)}",
                  f"model.model_max_length={max_length}"]
    planted = build_mirror(root, data, base)
    results = tmp_path / "results"
    configfile = tmp_path / "run.yaml"
    configfile.write_text(json.dumps({"experiments": [EXPERIMENT], "overrides": overrides, "results": str(results)}))
    plan = json.loads(run(["llava-core", "plan", EXPERIMENT, "--results", str(results),
                           *[x for o in overrides for x in ("-o", o)]]).stdout)
    (variant,) = plan["variants"].values()
    ddir = Path(plan["stages"][variant["stages"]["download"]]["dir"])
    fdir = Path(plan["stages"][variant["stages"]["filter"]]["dir"])
    assert ddir.parent == results / "data" and ddir.name.startswith("llava-v1.5+")  # sources unpinned: not the preset's
    target = str(fdir / "manifest.json")
    def smk(*args: str) -> list[str]:  # --configfile takes several values: keep it last
        return ["snakemake", *args, "--cores", "2", "--configfile", str(configfile)]

    run(smk(target), timeout=900)

    # Every declared source came from the mirror exactly once, each under its real host and path.
    sources = {p for p in server.requests if not p.startswith("/amazon/")}
    assert sorted(sources) == sorted(planted["files"])
    assert len([p for p in server.requests if not p.startswith("/amazon/")]) == len(planted["files"])
    lock = json.loads((ddir / "download.lock.json").read_text())["sources"]
    assert sorted(lock) == sorted(s["name"] for s in data["sources"])
    assert all(len(e["sha256"]) == 64 for e in lock.values())
    assert lock["coco-train2017"]["tree"]["files"] == 3  # train2017/ stripped into finetune/coco/train2017

    # OCR-VQA: only the covers the records need; a GIF and a PNG became JPEGs; the dead one is listed.
    report = json.loads((ddir / "ocr_vqa.crawl_report.json").read_text())
    assert report["requested"] == 4 and report["fetched"] == 3 and report["converted"] == {"GIF": 1, "PNG": 1}
    assert [(f["file"], f["reason"]) for f in report["failed"]] == [("1004.jpg", "http 404")]
    with Image.open(ddir / "finetune" / "ocr_vqa" / "images" / "1002.jpg") as im:
        assert im.format == "JPEG"

    # The eval-kit layout the scorers read is assembled from separate downloads.
    pope = ddir / "eval" / "pope" / "val2014"
    assert pope.is_symlink() and (pope / "placeholder.jpg").is_file()
    assert (ddir / "eval" / "gqa" / "data" / "images").resolve() == (ddir / "finetune" / "gqa" / "images").resolve()

    # The manifest says exactly what was kept and dropped, and why.
    manifest = json.loads(Path(target).read_text())
    for part in ("pretrain", "finetune"):
        expect = dict(planted["expect"][part])
        kept = expect.pop("kept")
        assert manifest[part]["kept"] == kept, part
        assert manifest[part]["reasons"] == expect, part
        written = json.loads((fdir / f"{part}.json").read_text())
        assert len(written) == kept
        dropped = (fdir / f"{part}.dropped.jsonl").read_text().splitlines()
        assert len(dropped) == sum(expect.values())
    assert manifest["finetune"]["dropped_examples"]["missing_image"] == ["1004"]

    # Truncation counts, against upstream's own token counts of every kept record (spec 2.3b).
    sp = raw_tokenizer(legacy=True)
    for part, template in (("pretrain", "plain"), ("finetune", "vicuna_v1")):
        written = json.loads((fdir / f"{part}.json").read_text())
        counts = []
        for rec in written:
            text = render(template, rec["conversations"], has_image="image" in rec).text
            n = len(original_ids(text, sp)) if "image" in rec else len(sp.encode(text).ids)
            counts.append((n, n + (576 - 1 if "image" in rec else 0)))
        lengths = manifest[part]["lengths"]
        assert lengths["records"] == len(written) and lengths["unencodable"] == 0, part
        assert lengths["cut_by_text_rule"] == sum(t > max_length for t, _ in counts), part
        assert lengths["cut_by_expanded_rule"] == sum(e > max_length for _, e in counts), part
        assert lengths["longest_text_tokens"] == max(t for t, _ in counts), part
    pre = manifest["pretrain"]["lengths"]  # short captions: only the 576 image positions make them long
    assert pre["cut_by_text_rule"] < pre["cut_by_expanded_rule"] == pre["records"]
    assert manifest["finetune"]["lengths"]["cut_by_text_rule"] > 0  # the system prompt alone is ~40 tokens
    assert manifest["finetune"]["malformed_examples"][0].endswith("'from' is 'gpt', expected 'human' "
                                                                  "(turns must alternate human/gpt, starting with human; "
                                                                  "a system turn may come first)")

    # Rerunning downloads nothing: Snakemake has nothing to do, and a forced download only verifies.
    n = len(server.requests)
    out = run(smk(target, "-n")).stdout
    assert "Nothing to be done" in out or "download" not in out
    run(smk(str(ddir / "download.json"), "--forcerun", "download"), timeout=600)
    # Nothing was fetched again; only the cover listed as failed is retried (dead links sometimes return).
    assert set(server.requests[n:]) == {"/amazon/images/I/1004.jpg"}
    assert json.loads((ddir / "download.lock.json").read_text())["sources"] == lock
