"""The tiny world as a mirror: reproducible tar archives of its folders and a ``sources.json``
manifest, the shape of a real dataset mirror that the download stage fetches from."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from llava_core.io import atomic_write, sha256_file, write_json
from llava_core.synthetic.world import EVAL, FINETUNE, INSTRUCT, PRETRAIN

MIRROR_PARTS = (PRETRAIN, FINETUNE, EVAL, INSTRUCT)


def _tar_folder(src: Path, dest: Path) -> None:
    """Deterministic uncompressed tar of ``src``'s contents (sorted, mtime 0, owner 0)."""
    paths = sorted(src.rglob("*"), key=lambda p: p.relative_to(src).as_posix())
    with atomic_write(dest, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for p in paths:
            info = tarfile.TarInfo(p.relative_to(src).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if p.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = p.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))


def package_mirror(world_dir: Path, mirror_dir: Path, parts: tuple[str, ...] = MIRROR_PARTS) -> list[dict]:
    """Pack the world's folders (``parts``) into ``<part>.tar`` files and describe them.

    Each archive holds the folder's contents at its top level, so unpacking into ``dest`` gives
    e.g. ``pretrain/blip_laion_cc_sbu_558k.json``. The list is also written to ``sources.json``.
    """
    world_dir, mirror_dir = Path(world_dir), Path(mirror_dir)
    mirror_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for part in parts:
        src = world_dir / part
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: missing; run generate_world first")
        archive = mirror_dir / f"{part}.tar"
        _tar_folder(src, archive)
        sources.append({"name": part, "url": archive.resolve().as_uri(), "dest": part,
                        "sha256": sha256_file(archive), "size": os.path.getsize(archive), "unpack": "tar"})
    write_json(mirror_dir / "sources.json", sources)
    return sources
