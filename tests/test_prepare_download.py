"""The downloader against a local HTTP server (with Range support) and file:// URLs, offline."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from http_util import serving
from real_layout import zip_bytes

from llava_core.prepare import download as dl
from llava_core.prepare.download import (
    ChecksumError,
    DownloadError,
    LockMismatchError,
    UnsafeArchiveError,
    download_sources,
)
from llava_core.prepare.sources import Source


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = os.urandom(300_000)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]
    cut_after: dict[str, int]  # path -> bytes sent before dropping the connection (first request only)
    requests: list[tuple[str, str | None]]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            assert m, rng
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.cut_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.cut_after, srv.requests = {}, {}, []
    with serving(srv):
        yield srv


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "BACKOFF_S", 0.0)


def run(sources: list[Source], tmp_path: Path, **kw: object) -> dict:
    return download_sources(sources, tmp_path / "data", tmp_path / "data.lock.json", progress=False, **kw)


def read_lock(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "data.lock.json").read_text())


def test_file_url_with_checksum(tmp_path: Path) -> None:
    src_file = tmp_path / "upstream" / "blip_558k.json"
    src_file.parent.mkdir()
    src_file.write_bytes(PAYLOAD)
    good = Source("meta", src_file.as_uri(), "LLaVA-Pretrain/blip_558k.json", sha256=sha(PAYLOAD), size=len(PAYLOAD))
    lock = run([good], tmp_path)
    assert (tmp_path / "data" / good.dest).read_bytes() == PAYLOAD
    assert lock == read_lock(tmp_path) == {"sources": {"meta": {
        "url": good.url, "sha256": sha(PAYLOAD), "size": len(PAYLOAD), "dest": good.dest}}}

    bad = Source("other", src_file.as_uri(), "other.json", sha256="0" * 64)
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        run([bad], tmp_path)
    assert not (tmp_path / "data" / "other.json").exists()


def test_http_interrupted_download_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    server.files["/f/images.bin"] = PAYLOAD
    server.cut_after["/f/images.bin"] = 70_000
    src = Source("img", server.base + "/f/images.bin", "img.bin", sha256=sha(PAYLOAD))
    run([src], tmp_path)
    assert (tmp_path / "data" / "img.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/f/images.bin", None), ("/f/images.bin", "bytes=70000-")]
    assert not list((tmp_path / "data" / ".downloads").iterdir())  # the .part became the file


def test_stale_part_is_refetched_once_from_scratch(server: _Server, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    src = Source("a", server.base + "/a.bin", "a.bin", sha256=sha(PAYLOAD))
    part = tmp_path / "data" / ".downloads" / f"a-{hashlib.sha1(src.url.encode()).hexdigest()[:8]}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage from another file")
    run([src], tmp_path)
    assert (tmp_path / "data" / "a.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/a.bin", "bytes=25-"), ("/a.bin", None)]


def test_complete_part_from_a_killed_run_is_not_fetched_again(server: _Server, tmp_path: Path) -> None:
    server.files["/a.bin"] = PAYLOAD
    src = Source("a", server.base + "/a.bin", "a.bin", size=len(PAYLOAD))
    part = tmp_path / "data" / ".downloads" / f"a-{hashlib.sha1(src.url.encode()).hexdigest()[:8]}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    run([src], tmp_path)
    assert (tmp_path / "data" / "a.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/a.bin", f"bytes={len(PAYLOAD)}-")]  # answered 416: nothing to add


def test_corrupted_existing_file_is_fetched_again(server: _Server, tmp_path: Path) -> None:
    server.files["/a.json"] = PAYLOAD
    src = Source("a", server.base + "/a.json", "a.json")  # no pinned sha: the lock is the reference
    run([src], tmp_path)
    dest = tmp_path / "data" / "a.json"
    dest.write_bytes(bytes([PAYLOAD[0] ^ 0xFF]) + PAYLOAD[1:])  # same size, always different bytes
    run([src], tmp_path)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_changed_upstream_bytes_fail_against_the_lock(server: _Server, tmp_path: Path) -> None:
    server.files["/a.json"] = PAYLOAD
    src = Source("a", server.base + "/a.json", "a.json")
    run([src], tmp_path)
    (tmp_path / "data" / "a.json").unlink()
    server.files["/a.json"] = b"new upstream release"
    with pytest.raises(LockMismatchError, match="deleting the entry 'a'") as exc:
        run([src], tmp_path)
    assert "data.lock.json" in str(exc.value)
    assert len(server.requests) == 3  # the mismatch earned exactly one fresh re-download
    assert not (tmp_path / "data" / "a.json").exists()

    lock = read_lock(tmp_path)
    del lock["sources"]["a"]  # the documented way to accept the change
    (tmp_path / "data.lock.json").write_text(json.dumps(lock))
    assert run([src], tmp_path)["sources"]["a"]["sha256"] == sha(b"new upstream release")


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_zip_and_tar_unpack_into_dest(tmp_path: Path) -> None:
    up = tmp_path / "up"
    up.mkdir()
    # A single top folder named like dest (train2017.zip -> train2017/...) lands directly in dest.
    (up / "train2017.zip").write_bytes(zip_bytes({"train2017/": b"", "train2017/1.jpg": b"one",
                                             "train2017/sub/2.jpg": b"two"}))
    (up / "vg.tar.gz").write_bytes(_tar([("VG_100K/3.jpg", b"three"), ("README", b"hi"),
                                         _link("VG_100K/alias.jpg", "3.jpg")]))
    (up / "plain.tar").write_bytes(_tar([("x.txt", b"x"), _link("y.txt", "x.txt", tarfile.LNKTYPE)], "w"))
    sources = [Source("coco", (up / "train2017.zip").as_uri(), "coco/train2017", unpack="zip"),
               Source("vg", (up / "vg.tar.gz").as_uri(), "vg", unpack="tar"),
               Source("plain", (up / "plain.tar").as_uri(), "plain", unpack="tar")]
    run(sources, tmp_path)
    data = tmp_path / "data"
    assert (data / "coco/train2017/1.jpg").read_bytes() == b"one"
    assert (data / "coco/train2017/sub/2.jpg").read_bytes() == b"two"
    assert (data / "vg/VG_100K/alias.jpg").read_bytes() == b"three"
    assert (data / "vg/README").read_bytes() == b"hi"
    assert (data / "plain/y.txt").read_bytes() == b"x"
    assert not list((data / ".downloads").iterdir())  # archives are removed once unpacked
    assert sorted(p.name for p in data.iterdir()) == [".downloads", "coco", "plain", "vg"]


@pytest.mark.parametrize(
    ("kind", "archive", "member"),
    [
        ("zip", zip_bytes({"ok.txt": b"ok", "../evil": b"pwned"}), "../evil"),
        ("tar", _tar([("ok.txt", b"ok"), ("../evil", b"pwned")]), "../evil"),
        ("tar", _tar([("ok.txt", b"ok"), ("/tmp/evil-abs", b"pwned")]), "/tmp/evil-abs"),
        ("tar", _tar([_link("link", "../../evil")]), "link"),
        ("tar", _tar([_link("link", "/etc")]), "link"),
        ("tar", _tar([_link("hard", "../evil", tarfile.LNKTYPE)]), "hard"),
        # Each link looks inside on its own; chained, l3 resolves to the parent of the folder.
        ("tar", _tar([_link("l2", "."), _link("l3", "l2/.."), ("l3/evil", b"pwned")]), "l3"),
    ],
    ids=["zip-dotdot", "tar-dotdot", "tar-absolute", "tar-symlink-up", "tar-symlink-abs", "tar-hardlink-up",
         "tar-symlink-chain"],
)
def test_archive_escaping_its_folder_is_refused(tmp_path: Path, kind: str, archive: bytes, member: str) -> None:
    up = tmp_path / "up"
    up.mkdir()
    (up / "bad.bin").write_bytes(archive)
    src = Source("bad", (up / "bad.bin").as_uri(), "inner/bad", unpack=kind)
    with pytest.raises(UnsafeArchiveError, match="refusing to unpack") as exc:
        run([src], tmp_path)
    assert repr(member) in str(exc.value)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "data" / "evil").exists()
    assert not (tmp_path / "data" / "inner" / "bad").exists()
    assert [p.name for p in (tmp_path / "data" / "inner").iterdir()] == []  # no temp folder left behind
    assert "bad" not in read_lock(tmp_path)["sources"]


def test_second_run_with_lock_downloads_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/d/meta.json"] = PAYLOAD
    server.files["/d/images.zip"] = zip_bytes({"images/0001.jpg": b"img"})
    sources = [Source("meta", server.base + "/d/meta.json", "meta.json"),
               Source("images", server.base + "/d/images.zip", "images", unpack="zip")]
    first = run(sources, tmp_path, workers=2)
    assert len(server.requests) == 2
    lock_mtime = (tmp_path / "data.lock.json").stat().st_mtime_ns
    assert run(sources, tmp_path, workers=2) == first
    assert len(server.requests) == 2
    assert (tmp_path / "data.lock.json").stat().st_mtime_ns == lock_mtime
    assert (tmp_path / "data" / "images" / "0001.jpg").read_bytes() == b"img"


def test_mirror_overrides_base_and_per_source_mirror_wins(server: _Server, tmp_path: Path) -> None:
    server.files["/mirror/unreachable.invalid/x/a.json"] = b"A"  # wget -x layout: <mirror>/<host>/<path>
    server.files["/own/b.json"] = b"B"
    sources = [Source("a", "https://unreachable.invalid/x/a.json?download=true", "a.json"),
               Source("b", "https://unreachable.invalid/y/b.json", "b.json", mirror=server.base + "/own/")]
    lock = run(sources, tmp_path, mirror=server.base + "/mirror")
    assert sorted(p for p, _ in server.requests) == ["/mirror/unreachable.invalid/x/a.json", "/own/b.json"]
    assert (tmp_path / "data" / "a.json").read_bytes() == b"A"
    assert lock["sources"]["a"]["url"] == sources[0].url  # the lock keeps the canonical URL


def test_failures_are_reported_and_successes_still_locked(server: _Server, tmp_path: Path) -> None:
    server.files["/ok.json"] = b"ok"
    sources = [Source("ok", server.base + "/ok.json", "ok.json"),
               Source("gone", server.base + "/gone.json", "gone.json")]
    with pytest.raises(DownloadError, match="HTTP 404"):
        run(sources, tmp_path)
    assert [p for p, _ in server.requests].count("/gone.json") == 1  # a 404 is not retried
    assert list(read_lock(tmp_path)["sources"]) == ["ok"]


def test_dropped_connections_give_up_after_three_tries(server: _Server, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/a.bin"] = PAYLOAD
    real_fetch = dl._fetch_http
    calls = []

    def always_cut(url: str, part: Path, bar: object) -> None:
        calls.append(url)
        server.cut_after["/a.bin"] = 10
        real_fetch(url, part, bar)  # type: ignore[arg-type]

    monkeypatch.setattr(dl, "_fetch_http", always_cut)
    with pytest.raises(DownloadError, match="failed after 3 tries: connection closed after 30 of"):
        run([Source("a", server.base + "/a.bin", "a.bin")], tmp_path)
    assert len(calls) == 3


def test_damaged_unpacked_folder_is_fetched_again(server: _Server, tmp_path: Path) -> None:
    server.files["/images.zip"] = zip_bytes({"images/a.jpg": b"aaa", "images/b.jpg": b"bbb"})
    sources = [Source("images", server.base + "/images.zip", "images", unpack="zip")]
    lock = run(sources, tmp_path)
    assert lock["sources"]["images"]["tree"]["files"] == 2
    (tmp_path / "data" / "images" / "b.jpg").write_bytes(b"")  # the VG_100K_2 'empty file' damage
    run(sources, tmp_path)
    assert len(server.requests) == 2
    assert (tmp_path / "data" / "images" / "b.jpg").read_bytes() == b"bbb"
    run(sources, tmp_path)
    assert len(server.requests) == 2


def test_files_already_in_place_are_adopted_and_then_verified(server: _Server, tmp_path: Path) -> None:
    kit = tmp_path / "data" / "eval" / "gqa"
    kit.mkdir(parents=True)
    (kit / "q.jsonl").write_text("{}\n")
    sources = [Source("eval-kit", "eval.zip", "eval", unpack="zip")]  # mirror-only, no base URL given
    lock = run(sources, tmp_path)
    entry = lock["sources"]["eval-kit"]
    assert entry["adopted"] is True and entry["tree"]["files"] == 1 and server.requests == []
    assert run(sources, tmp_path) == lock
    (kit / "q.jsonl").unlink()  # damaged since: now it must come from a mirror, and none is set
    with pytest.raises(DownloadError, match="only served by mirrors; set data.base_url"):
        run(sources, tmp_path)
    server.files["/kit/eval.zip"] = zip_bytes({"eval/gqa/q.jsonl": b"{}\n"})
    lock = run(sources, tmp_path, base_url=server.base + "/kit")
    assert "adopted" not in lock["sources"]["eval-kit"] and (kit / "q.jsonl").exists()


def test_links_glue_sources_into_the_expected_layout(server: _Server, tmp_path: Path) -> None:
    server.files["/val2014.zip"] = zip_bytes({"val2014/COCO_val2014_1.jpg": b"img"})
    server.files["/eval.zip"] = zip_bytes({"eval/pope/llava_pope_test.jsonl": b"{}\n"})
    sources = [Source("coco-val", server.base + "/val2014.zip", "benchmarks/coco/val2014", unpack="zip"),
               Source("kit", server.base + "/eval.zip", "eval", unpack="zip")]
    links = {"eval/pope/val2014": "benchmarks/coco/val2014"}
    run(sources, tmp_path, links=links)
    link = tmp_path / "data" / "eval" / "pope" / "val2014"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert (link / "COCO_val2014_1.jpg").read_bytes() == b"img"
    n = len(server.requests)
    run(sources, tmp_path, links={**links, "eval/pope/first.jpg": "benchmarks/coco/val2014/COCO_val2014_1.jpg"})
    assert len(server.requests) == n  # links inside the kit's folder do not count as damage to it
    with pytest.raises(DownloadError, match="eval/x -> nowhere"):
        run(sources, tmp_path, links={"eval/x": "nowhere"})
