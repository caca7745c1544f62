#!/usr/bin/env python
"""Compare this package's token streams with the authors' own code (PyPI ``llava-torch``).

Two halves, two environments, one JSON file between them:

    # 1. in this project's venv: cases (records, templates, eval prompts) and both tokenizer folders
    python scripts/compare_with_upstream.py cases --out /tmp/upstream
    # 2. in a venv with the original code (docs/recipe.md: llava-torch==1.2.2.post1 --no-deps,
    #    transformers==4.37.2, tokenizers==0.15.1, sentencepiece, accelerate==0.26.1, einops, shortuuid)
    /path/to/oracle-venv/bin/python scripts/compare_with_upstream.py upstream --out /tmp/upstream
    # 3. back here: this package's ids and labels against upstream's, both folder forms
    python scripts/compare_with_upstream.py compare --out /tmp/upstream

Upstream runs ``preprocess_multimodal`` + ``preprocess`` (``preprocess_v1`` / ``preprocess_plain``)
of ``llava/train/train.py`` and ``tokenizer_image_token`` of ``llava/mm_utils.py`` with the legacy
Llama tokenizer (``tokenizer.legacy = True``), as the released checkpoints were trained. The
vocabulary is LLaMA's real one (tests/llama_vocab.py). Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_TEMPLATE = {"vicuna_v1": "v1", "plain": "plain"}


def _turns(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"from": f, "value": v} for q, a in pairs for f, v in (("human", q), ("gpt", a))]


CASES = [
    _turns([("<image>\nWhat is the man doing?", "He is ironing clothes on the back of a taxi."),
            ("Is this unusual?", "Yes, it is unusual: people iron indoors, not on a moving car.")]),
    _turns([("What color is the car?\n<image>", "Red")]),
    _turns([("Look at <image> and count the birds.", "3")]),
    _turns([("<image>\nHow many dogs?", "2"), ("And cats?", "12")]),
    _turns([("<image>\nList two things.", " a cat\n- a mat"), ("Again?", "\n1. yes")]),
]
TEXT_ONLY = [
    _turns([("Write a haiku about café mornings ☕.", "Steam curls from the cup,\nquiet street, first light on "
             "tiles—\nthe day starts slowly."), ("Translate 'hello' to Japanese.", "こんにちは (konnichiwa).")]),
    _turns([("In LLaVA data, what does <image> mark?", "Where the picture goes.")]),
]


def make_cases(out: Path) -> None:
    """Records (hand-written + the tiny world's), eval prompts and both tokenizer folders."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from llama_vocab import write_tokenizer_folder

    from llava_core.data.conversation import render_prompt
    from llava_core.data.formats import read_llava_records
    from llava_core.evaluate.benchmarks import BENCHMARKS, get_benchmark
    from llava_core.synthetic import generate_world

    world = out / "world"
    generate_world(world, seed=5, n_pretrain=60, n_finetune=200, n_eval=12)
    records = [{"id": f"case{i}", "image": "x.jpg", "conversations": c} for i, c in enumerate(CASES)]
    records += [{"id": f"text{i}", "conversations": c} for i, c in enumerate(TEXT_ONLY)]
    finetune = read_llava_records(next((world / "finetune").glob("*.json")))
    pretrain = read_llava_records(world / "pretrain" / "blip_laion_cc_sbu_558k.json")
    cases = {"vicuna_v1": records + finetune,
             "plain": [dict(r, conversations=r["conversations"][:2]) for r in records if "image" in r] + pretrain}
    prompts = [render_prompt("vicuna_v1", q.text, has_image=q.image is not None)
               for name in sorted(BENCHMARKS) for q in get_benchmark(name).load_questions(world / "eval")]
    for form in ("legacy", "nonlegacy"):
        write_tokenizer_folder(out / form, legacy=form == "legacy")
    (out / "cases.json").write_text(json.dumps({"records": cases, "prompts": prompts}, ensure_ascii=False))
    print(f"{sum(map(len, cases.values()))} records, {len(prompts)} prompts -> {out / 'cases.json'}")


def run_upstream(out: Path) -> None:
    """In the original code's environment: upstream's ids and labels for every case."""
    from dataclasses import dataclass

    from llava import conversation as conversation_lib
    from llava.mm_utils import tokenizer_image_token
    from llava.train import train as upstream
    from transformers import LlamaTokenizerFast

    @dataclass
    class DataArgs:
        is_multimodal: bool = True
        mm_use_im_start_end: bool = False

    # The legacy Llama tokenizer over the real vocabulary, built with this environment's tokenizers
    # (an older tokenizers cannot read a tokenizer.json written by a newer one).
    sys.path.insert(0, str(ROOT / "tests"))
    from llama_vocab import raw_tokenizer

    tok = LlamaTokenizerFast(tokenizer_object=raw_tokenizer(legacy=True), bos_token="<s>", eos_token="</s>",
                             unk_token="<unk>", legacy=True)
    tok.legacy = True  # the slow tokenizer of transformers 4.31 behaved so whatever the flag said
    tok.pad_token = tok.unk_token
    tok.model_max_length = 10**6
    cases = json.loads((out / "cases.json").read_text())
    result: dict = {"records": {}, "prompts": []}
    for template, records in cases["records"].items():
        conversation_lib.default_conversation = conversation_lib.conv_templates[UPSTREAM_TEMPLATE[template]]
        rows = []
        for rec in records:
            has_image = "image" in rec
            sources = [copy.deepcopy(rec["conversations"])]
            if has_image:
                sources = upstream.preprocess_multimodal(sources, DataArgs())
            d = upstream.preprocess(sources, tok, has_image=has_image)
            rows.append({"id": rec["id"], "input_ids": d["input_ids"][0].tolist(), "labels": d["labels"][0].tolist()})
        result["records"][template] = rows
    result["prompts"] = [tokenizer_image_token(p, tok) for p in cases["prompts"]]
    (out / "upstream.json").write_text(json.dumps(result))
    print(f"upstream streams -> {out / 'upstream.json'}")


def compare(out: Path) -> int:
    """This package's streams (both folder forms) against upstream's; the image as one -200."""
    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer

    from llava_core.data.conversation import Rendered, render
    from llava_core.data.tokenize import encode, make_tokenizer_for_llava

    cases = json.loads((out / "cases.json").read_text())
    want = json.loads((out / "upstream.json").read_text())
    summary: dict = {}
    for form in ("legacy", "nonlegacy"):
        tok = make_tokenizer_for_llava(AutoTokenizer.from_pretrained(str(out / form)))
        image_id = tok.convert_tokens_to_ids("<image>")

        def ours(text: str, has_image: bool, supervised=(), tok=tok, image_id=image_id) -> tuple[list[int], list[int]]:
            enc = encode(Rendered(text, list(supervised)), tok, max_length=10**6, num_image_tokens=1,
                         has_image=has_image)
            return [-200 if t == image_id else t for t in enc.input_ids], enc.labels

        checked, mismatched = 0, []
        for template, records in cases["records"].items():
            for rec, up in zip(records, want["records"][template], strict=True):
                has_image = "image" in rec
                rendered = render(template, rec["conversations"], has_image=has_image)
                ids, labels = ours(rendered.text, has_image, rendered.supervised)
                up_labels = [-100 if t == -200 else t for t in up["labels"]]
                checked += 1
                if ids != up["input_ids"] or labels != up_labels:
                    mismatched.append(f"{template}/{rec['id']}")
        for i, (prompt, up) in enumerate(zip(cases["prompts"], want["prompts"], strict=True)):
            checked += 1
            if ours(prompt, "<image>" in prompt)[0] != up:
                mismatched.append(f"prompt {i}")
        summary[form] = {"checked": checked, "mismatched": mismatched[:20], "n_mismatched": len(mismatched)}
    print("UPSTREAM_COMPARE " + json.dumps(summary, ensure_ascii=False))
    return 0 if all(not s["n_mismatched"] for s in summary.values()) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=("cases", "upstream", "compare"))
    p.add_argument("--out", type=Path, required=True, help="folder shared by the three steps")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "cases":
        make_cases(args.out)
    elif args.step == "upstream":
        run_upstream(args.out)
    else:
        return compare(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
