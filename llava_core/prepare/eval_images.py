"""The images an evaluation set asks about, found from its kit alone (no benchmark loader).

The filter's eval-overlap index needs every benchmark's images, but not its loading or scoring
code: reading them through the kits keeps a scorer or loader edit from rerunning the filter (and
with it both training stages). The question file's layout is the kit's ``question_format``; the
image fields resolve against the kit's image folder, as the benchmarks' loaders resolve them
(``tests/test_prepare_overlap.py`` checks both give the same images on every benchmark).
"""

from __future__ import annotations

from pathlib import Path

from llava_core.data.formats import read_llava_records, read_questions, read_tsv_rows, tsv_image_files
from llava_core.evalkit import QUESTIONS, Kit


def eval_images(kit: Kit, eval_root: Path) -> list[str]:
    """Absolute paths of the images the benchmark's questions refer to, in question order, each once
    (a TSV's base64 images are decoded into the kit's image folder, as its loader does)."""
    question_file = kit.require(eval_root, QUESTIONS)
    if kit.question_format == "tsv":
        found = tsv_image_files(read_tsv_rows(question_file), kit.image_folder(eval_root), question_file).values()
    else:
        rows = read_llava_records(question_file) if kit.question_format == "json" else \
            read_questions(question_file, required=())
        folder = kit.image_folder(eval_root)
        found = (str((folder / r["image"]).absolute()) for r in rows if r.get("image"))
    return list(dict.fromkeys(p for p in found if p))
