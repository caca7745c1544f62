"""The LLaVA-1.5 headline numbers (``docs/MODEL_ZOO.md``, current), keyed by model row and benchmark.

Units as in the paper: percent, except MME (perception points, out of 2000). POPE is the mean F1
of its three COCO splits; SEED is the all-question accuracy (image + video); SQA is IMG accuracy.
"""

from __future__ import annotations

_COLUMNS = ("vqav2", "gqa", "vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn",
            "seed_bench", "llava_bench", "mm_vet")

_ROWS = {
    "llava-v1.5-7b": (78.5, 62.0, 50.0, 66.8, 58.2, 85.9, 1510.7, 64.3, 58.3, 58.6, 65.4, 31.1),
    "llava-v1.5-13b": (80.0, 63.3, 53.6, 71.6, 61.3, 85.9, 1531.3, 67.7, 63.6, 61.6, 72.5, 36.1),
    "llava-v1.5-7b-lora": (79.1, 63.0, 47.8, 68.4, 58.2, 86.4, 1476.9, 66.1, 58.9, 60.1, 67.9, 30.2),
    "llava-v1.5-13b-lora": (80.0, 63.3, 58.9, 71.2, 60.2, 86.7, 1541.7, 68.5, 61.5, 61.3, 69.5, 38.3),
}

#: model row -> benchmark name -> the paper's number.
PAPER_NUMBERS: dict[str, dict[str, float]] = {
    model: dict(zip(_COLUMNS, values, strict=True)) for model, values in _ROWS.items()
}
