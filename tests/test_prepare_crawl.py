"""The image crawler against a local HTTP server, offline: conversion, failures, retries, resume."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from http_util import serving
from PIL import Image, ImageFile

from llava_core.io import FormatError
from llava_core.prepare import crawl
from llava_core.prepare.crawl import crawl_images, ocrvqa_items

RED, BLUE = (220, 20, 20), (20, 40, 200)


def image_bytes(fmt: str, color: tuple[int, ...] = RED, mode: str = "RGB", size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), color).save(buf, fmt)
    return buf.getvalue()


def png_half_transparent() -> bytes:
    """Left half opaque blue, right half fully transparent."""
    im = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    im.paste(Image.new("RGBA", (8, 16), (*BLUE, 255)), (0, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# A route answers with a list of (status, body, content type); each request takes the next one and
# the last repeats, so [(503, ...), (503, ...), (200, ...)] is a server that recovers.
Response = tuple[int, bytes, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    routes: dict[str, list[Response]]
    counts: Counter[str]
    delay: float
    active: int
    max_active: int
    mutex: threading.Lock

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *responses: Response) -> str:
        self.routes[path] = list(responses)
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        with srv.mutex:
            n = srv.counts[self.path]
            srv.counts[self.path] += 1
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            if srv.delay:
                time.sleep(srv.delay)
            responses = srv.routes.get(self.path)
            status, body, ctype = responses[min(n, len(responses) - 1)] if responses else (404, b"", "text/plain")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with srv.mutex:
                srv.active -= 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.counts, srv.delay, srv.active, srv.max_active = {}, Counter(), 0.0, 0, 0
    srv.mutex = threading.Lock()
    with serving(srv):
        yield srv


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl, "BACKOFF_S", 0.0)


def run(items: list[tuple[str, str]], tmp_path: Path, **kw: object) -> dict:
    kw.setdefault("workers", 4)
    return crawl_images(items, tmp_path / "images", tmp_path / "crawl.lock.json", tmp_path / "report.json",
                        progress=False, timeout=5.0, **kw)


def read_lock(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "crawl.lock.json").read_text())


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def ok(body: bytes, ctype: str = "image/jpeg") -> Response:
    return (200, body, ctype)


# ------------------------------------------------------------------------------------- formats


def test_jpeg_kept_and_other_formats_converted(server: _Server, tmp_path: Path) -> None:
    jpeg = image_bytes("JPEG")
    items = [
        ("1.jpg", server.serve("/I/1.jpg", ok(jpeg))),
        ("2.jpg", server.serve("/I/2.jpg", ok(image_bytes("GIF", (255, 0, 0)), "image/gif"))),
        ("3.jpg", server.serve("/I/3.jpg", ok(png_half_transparent(), "image/png"))),
        ("4.jpg", server.serve("/I/4.jpg", ok(image_bytes("BMP", BLUE), "image/bmp"))),
    ]
    report = run(items, tmp_path)
    out = tmp_path / "images"

    assert (out / "1.jpg").read_bytes() == jpeg  # verbatim, not re-encoded
    with Image.open(out / "2.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert close(im.getpixel((8, 8)), (255, 0, 0))
    with Image.open(out / "3.jpg") as im:
        assert im.format == "JPEG"
        assert close(im.getpixel((2, 8)), BLUE)
        assert close(im.getpixel((13, 8)), (255, 255, 255))  # transparency composited on white
    with Image.open(out / "4.jpg") as im:
        assert im.format == "JPEG" and close(im.getpixel((8, 8)), BLUE)

    assert report == {"requested": 4, "fetched": 4, "already_present": 0,
                      "converted": {"BMP": 1, "GIF": 1, "PNG": 1}, "failed": [], "failed_count": 0}
    assert json.loads((tmp_path / "report.json").read_text()) == report
    lock = read_lock(tmp_path)["images"]
    assert sorted(lock) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert lock["1.jpg"]["source_format"] == "JPEG" and lock["2.jpg"]["source_format"] == "GIF"
    assert lock["2.jpg"]["size"] == (out / "2.jpg").stat().st_size
    assert lock["1.jpg"]["url"] == items[0][1]


def test_animated_gif_first_frame(server: _Server, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    run([("a.jpg", server.serve("/a.gif", ok(buf.getvalue(), "image/gif")))], tmp_path)
    with Image.open(tmp_path / "images" / "a.jpg") as im:
        assert im.format == "JPEG" and close(im.getpixel((8, 8)), (255, 0, 0))


# ------------------------------------------------------------------------------------ failures


def test_failures_are_reported_not_raised(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jpeg = image_bytes("JPEG", size=64)
    items = [
        ("good.jpg", server.serve("/good.jpg", ok(jpeg))),
        ("dead.jpg", server.url("/dead.jpg")),  # unknown path: 404
        ("gone.jpg", server.serve("/gone.jpg", (410, b"gone", "text/plain"))),
        ("cut.jpg", server.serve("/cut.jpg", ok(jpeg[: len(jpeg) // 2]))),
        ("page.jpg", server.serve("/page.jpg", ok(b"<!DOCTYPE html><html>not found</html>", "text/html"))),
        ("empty.jpg", server.serve("/empty.jpg", ok(b""))),
        ("noeoi.jpg", server.serve("/noeoi.jpg", ok(jpeg[:-2]))),  # only the end marker missing
        ("noiend.jpg", server.serve("/noiend.jpg", ok(image_bytes("PNG")[:-5], "image/png"))),  # load() accepts it
    ]
    # training code may have switched this on; the crawl must still see the damage, and restore it
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    report = run(items, tmp_path, tries=3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True

    reasons = {f["file"]: f["reason"] for f in report["failed"]}
    assert reasons == {"dead.jpg": "http 404", "gone.jpg": "http 410", "cut.jpg": "corrupt",
                       "page.jpg": "corrupt", "empty.jpg": "empty", "noeoi.jpg": "corrupt", "noiend.jpg": "corrupt"}
    assert [f["file"] for f in report["failed"]] == sorted(reasons)
    assert report["failed_count"] == 7 and report["fetched"] == 1
    assert {f["file"]: f["url"] for f in report["failed"]}["dead.jpg"] == server.url("/dead.jpg")
    # permanent failures are not retried, and neither are bytes that arrived whole but are broken
    assert server.counts["/dead.jpg"] == 1 and server.counts["/gone.jpg"] == 1 and server.counts["/cut.jpg"] == 1

    out = tmp_path / "images"
    assert sorted(p.name for p in out.iterdir()) == ["good.jpg"]  # nothing for failures, no temp files
    assert sorted(read_lock(tmp_path)["images"]) == ["good.jpg"]
    assert json.loads((tmp_path / "report.json").read_text())["failed"] == report["failed"]


def test_transient_errors_are_retried(server: _Server, tmp_path: Path) -> None:
    jpeg = image_bytes("JPEG")
    flaky = server.serve("/flaky.jpg", (503, b"busy", "text/plain"), (503, b"busy", "text/plain"), ok(jpeg))
    down = server.serve("/down.jpg", (500, b"oops", "text/plain"))
    report = run([("flaky.jpg", flaky), ("down.jpg", down)], tmp_path, tries=3)

    assert server.counts["/flaky.jpg"] == 3
    assert (tmp_path / "images" / "flaky.jpg").read_bytes() == jpeg
    assert server.counts["/down.jpg"] == 3  # gave up after `tries` attempts
    assert report["failed"] == [{"file": "down.jpg", "url": down, "reason": "http 500",
                                 "detail": "Internal Server Error (after 3 tries)"}]


def test_timeout_is_a_failure(server: _Server, tmp_path: Path) -> None:
    server.delay = 0.5
    url = server.serve("/slow.jpg", ok(image_bytes("JPEG")))
    report = crawl_images([("slow.jpg", url)], tmp_path / "images", tmp_path / "lock.json",
                          tmp_path / "report.json", tries=2, timeout=0.1, progress=False)
    assert [(f["file"], f["reason"]) for f in report["failed"]] == [("slow.jpg", "timeout")]
    assert server.counts["/slow.jpg"] == 2
    assert not (tmp_path / "images" / "slow.jpg").exists()


# -------------------------------------------------------------------------------------- resume


def test_rerun_makes_no_requests_and_refetches_changed_file(server: _Server, tmp_path: Path) -> None:
    bodies = {f"{i}.jpg": image_bytes("JPEG", (40 * i, 10, 10)) for i in range(4)}
    bodies["4.jpg"] = image_bytes("GIF", (0, 200, 0))
    items = [(name, server.serve(f"/{name}", ok(body))) for name, body in bodies.items()]
    run(items, tmp_path)
    assert sum(server.counts.values()) == 5
    lock_before = (tmp_path / "crawl.lock.json").read_text()
    saved_gif = (tmp_path / "images" / "4.jpg").read_bytes()

    server.counts.clear()
    report = run(items, tmp_path)
    assert sum(server.counts.values()) == 0
    assert report["already_present"] == 5 and report["fetched"] == 0 and report["converted"] == {}
    assert (tmp_path / "crawl.lock.json").read_text() == lock_before
    assert (tmp_path / "images" / "4.jpg").read_bytes() == saved_gif  # a converted file is not redone

    target = tmp_path / "images" / "2.jpg"
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF  # same size, different bytes: only the sha256 can tell
    target.write_bytes(bytes(data))
    report = run(items, tmp_path)
    assert dict(server.counts) == {"/2.jpg": 1}
    assert report["fetched"] == 1 and report["already_present"] == 4
    assert target.read_bytes() == bodies["2.jpg"]


def test_files_without_lock_entry(server: _Server, tmp_path: Path) -> None:
    """A folder crawled before (no lock): good files are adopted, broken ones fetched again."""
    out = tmp_path / "images"
    out.mkdir()
    good, fresh = image_bytes("JPEG", RED), image_bytes("JPEG", BLUE)
    (out / "old.jpg").write_bytes(good)
    (out / "broken.jpg").write_bytes(good[:100])
    (out / "wasgif.jpg").write_bytes(image_bytes("GIF", (0, 0, 255)))  # official crawler kept GIF bytes
    items = [(n, server.serve(f"/{n}", ok(fresh))) for n in ("old.jpg", "broken.jpg", "wasgif.jpg")]
    report = run(items, tmp_path)

    assert dict(server.counts) == {"/broken.jpg": 1}
    assert (out / "old.jpg").read_bytes() == good
    assert (out / "broken.jpg").read_bytes() == fresh
    with Image.open(out / "wasgif.jpg") as im:
        assert im.format == "JPEG" and close(im.getpixel((8, 8)), (0, 0, 255))
    assert report["already_present"] == 2 and report["fetched"] == 1 and report["converted"] == {"GIF": 1}
    lock = read_lock(tmp_path)["images"]
    assert sorted(lock) == ["broken.jpg", "old.jpg", "wasgif.jpg"]
    assert lock["wasgif.jpg"]["size"] == (out / "wasgif.jpg").stat().st_size


def test_lock_written_when_crawl_stops(server: _Server, tmp_path: Path) -> None:
    """A local error (here: the target is a folder) raises, but what was stored reaches the lock."""
    out = tmp_path / "images"
    (out / "z_blocked.jpg").mkdir(parents=True)
    items = [(n, server.serve(f"/{n}", ok(image_bytes("JPEG")))) for n in ("a.jpg", "b.jpg", "z_blocked.jpg")]
    with pytest.raises(OSError):
        run(items, tmp_path, workers=1)
    assert sorted(read_lock(tmp_path)["images"]) == ["a.jpg", "b.jpg"]
    assert hidden_files(out) == []
    server.counts.clear()
    (out / "z_blocked.jpg").rmdir()
    report = run(items, tmp_path, workers=1)
    assert dict(server.counts) == {"/z_blocked.jpg": 1} and report["already_present"] == 2


def test_url_for_and_bad_inputs(server: _Server, tmp_path: Path) -> None:
    url = server.serve("/mirror/x.jpg", ok(image_bytes("JPEG")))
    report = run([("x.jpg", "http://dead.invalid/x.jpg")], tmp_path, url_for=lambda name, _: server.url(f"/mirror/{name}"))
    assert report["fetched"] == 1 and read_lock(tmp_path)["images"]["x.jpg"]["url"] == url
    with pytest.raises(ValueError, match="unsafe"):
        run([("../x.jpg", url)], tmp_path)
    with pytest.raises(ValueError, match="two URLs"):
        run([("x.jpg", url), ("x.jpg", url + "?v=2")], tmp_path)
    (tmp_path / "crawl.lock.json").write_text('{"images": {"x.jpg": {"url": "u"}}}')
    with pytest.raises(FormatError, match="x.jpg"):
        run([("x.jpg", url)], tmp_path)


# --------------------------------------------------------------------------------- parallelism


def test_requests_run_in_parallel(server: _Server, tmp_path: Path) -> None:
    server.delay = 0.2
    items = [(f"{i}.jpg", server.serve(f"/{i}.jpg", ok(image_bytes("JPEG")))) for i in range(8)]
    start = time.monotonic()
    report = run(items, tmp_path, workers=4)
    assert report["fetched"] == 8
    assert server.max_active >= 2
    assert time.monotonic() - start < 8 * 0.2  # serial would take at least 1.6 s


# ------------------------------------------------------------------------------------- OCR-VQA


def write_dataset(tmp_path: Path, records: dict) -> Path:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(records))
    return path


def record(url: str) -> dict:
    return {"imageURL": url, "title": "T", "authorName": "A", "genre": "G", "genreID": 1,
            "questions": ["Who wrote this book?"], "answers": ["A"], "split": 1}


def test_ocrvqa_items(tmp_path: Path) -> None:
    path = write_dataset(tmp_path, {
        "782118577": record("http://ecx.images-amazon.com/images/I/51abc.jpg"),
        "1573243698": record("http://ecx.images-amazon.com/images/I/41xyz.gif"),
        "0060931442": record("http://ecx.images-amazon.com/images/I/61q.jpg"),
    })
    assert ocrvqa_items(path) == [
        ("782118577.jpg", "http://ecx.images-amazon.com/images/I/51abc.jpg"),
        ("1573243698.jpg", "http://ecx.images-amazon.com/images/I/41xyz.gif"),
        ("0060931442.jpg", "http://ecx.images-amazon.com/images/I/61q.jpg"),
    ]
    assert ocrvqa_items(path, needed={"0060931442.jpg", "782118577.jpg", "999.jpg"}) == [
        ("782118577.jpg", "http://ecx.images-amazon.com/images/I/51abc.jpg"),
        ("0060931442.jpg", "http://ecx.images-amazon.com/images/I/61q.jpg"),
    ]
    assert ocrvqa_items(path, needed={"1573243698.jpg"}, mirror="https://mirror.example/ocr_vqa/images/") == [
        ("1573243698.jpg", "https://mirror.example/ocr_vqa/images/1573243698.jpg"),
    ]


@pytest.mark.parametrize("bad", [{"title": "no url"}, {"imageURL": ""}, {"imageURL": 5}, ["not", "a", "dict"]])
def test_ocrvqa_malformed_entry(tmp_path: Path, bad: object) -> None:
    path = write_dataset(tmp_path, {"782118577": record("http://x/1.jpg"), "1573243698": bad})
    with pytest.raises(FormatError, match="1573243698") as err:
        ocrvqa_items(path)
    assert str(path) in str(err.value)


def test_ocrvqa_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    path.write_text("[1, 2]")
    with pytest.raises(FormatError, match="JSON object"):
        ocrvqa_items(path)
    with pytest.raises(FormatError, match="file name"):
        ocrvqa_items(write_dataset(tmp_path, {"../etc": record("http://x/1.jpg")}))


def test_amazon_placeholder_pixel_is_a_failure(server: _Server, tmp_path: Path) -> None:
    # Amazon answers some dead covers with a 1x1 GIF and status 200: not a cover to train on.
    report = run([("p.jpg", server.serve("/I/p.gif", ok(image_bytes("GIF", size=1), "image/gif")))], tmp_path)
    assert [(f["file"], f["reason"]) for f in report["failed"]] == [("p.jpg", "placeholder")]
    assert not (tmp_path / "images" / "p.jpg").exists()
