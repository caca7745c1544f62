"""LLaVA-Instruct regeneration, the offline parts: the teacher's context in the authors' caps-file
form, the prompt folder, reply parsing in their conv-file form, and the released record layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llava_core.prepare.instruct.context import ImageFacts, box_line, coco_facts, symbolic_context
from llava_core.prepare.instruct.parse import Malformed, parse_description, parse_reply, parse_turns
from llava_core.prepare.instruct.prompts import PromptError, load_kind, load_prompts
from llava_core.prepare.instruct.records import make_record

CAPS = ["A red bus parked on a street.", "A bus next to a sidewalk.", "The bus is red and white.",
        "A city bus waits at a stop.", "A large bus on a city road."]


def write_prompts(root: Path) -> Path:
    """A prompt folder in the authors' layout, with texts of our own."""
    conv = root / "conversation"
    conv.mkdir(parents=True)
    (conv / "system_message.txt").write_text("You are a visual assistant. Design a conversation.\n")
    (conv / "000_caps.txt").write_text("\n".join(CAPS) + "\n")
    (conv / "000_conv.txt").write_text("Question:\nWhat color is the bus?\n===\nAnswer:\nThe bus is red.\n")
    (conv / "001_caps.txt").write_text("A dog on grass.\n")
    (conv / "001_conv.txt").write_text("Question:\nWhat animal is shown?\n===\nAnswer:\nA dog.\n")
    for kind in ("detail_description", "complex_reasoning"):
        d = root / kind
        d.mkdir()
        (d / "system_message.txt").write_text(f"System message of {kind}.")
        (d / "000_caps.txt").write_text("\n".join(CAPS) + "\n\nbus: [0.1, 0.2, 0.9, 0.8]\nperson: [0.0, 0.5, 0.05, 1.0]\n")
        reply = "A red bus." if kind == "detail_description" else "Question:\nWhy wait?\n===\nAnswer:\nA stop.\n"
        (d / "000_conv.txt").write_text(reply)
    return root


@pytest.mark.parametrize(("bbox", "size", "line"), [
    ([10, 20, 30, 40], (200, 100), "bus: [0.05, 0.2, 0.2, 0.6]"),      # hand-computed
    ([0, 0, 640, 480], (640, 480), "bus: [0.0, 0.0, 1.0, 1.0]"),       # printed as Python prints floats
    ([1, 1, 1, 1], (3, 3), "bus: [0.333, 0.333, 0.667, 0.667]"),       # three decimals
    ([367.4, 142.97, 113.7, 160.5], (640, 427), "bus: [0.574, 0.335, 0.752, 0.711]"),
])
def test_box_line_is_the_caps_file_form(bbox, size, line):
    assert box_line("bus", bbox, *size) == line


def test_symbolic_context_from_coco_files():
    captions = {"images": [{"id": 9, "file_name": "000000000009.jpg", "width": 200, "height": 100}],
                "annotations": [{"image_id": 9, "caption": c + " "} for c in CAPS[:2]]}
    instances = {"categories": [{"id": 6, "name": "bus"}, {"id": 1, "name": "person"}],
                 "annotations": [{"image_id": 9, "category_id": 6, "bbox": [10, 20, 30, 40]},
                                 {"image_id": 9, "category_id": 1, "bbox": [0, 50, 10, 50]},
                                 {"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]}]}
    facts = coco_facts(captions, instances)[9]
    assert symbolic_context(facts, with_boxes=False) == "\n".join(CAPS[:2])
    assert symbolic_context(facts, with_boxes=True) == (
        "\n".join(CAPS[:2]) + "\n\nbus: [0.05, 0.2, 0.2, 0.6]\nperson: [0.0, 0.5, 0.05, 1.0]")
    assert symbolic_context(ImageFacts(1, "x.jpg", 10, 10, ["one"]), with_boxes=True) == "one"


def test_prompt_folder_builds_the_few_shot_messages(tmp_path):
    prompts = load_prompts(write_prompts(tmp_path))
    conv = prompts["conversation"]
    assert not conv.with_boxes and prompts["complex_reasoning"].with_boxes and prompts["detail_description"].with_boxes
    msgs = conv.messages("QUERY CONTEXT")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "You are a visual assistant. Design a conversation."
    assert msgs[1]["content"] == "\n".join(CAPS) and msgs[2]["content"].startswith("Question:\nWhat color")
    assert msgs[3]["content"] == "A dog on grass." and msgs[-1]["content"] == "QUERY CONTEXT"


def test_prompt_folder_errors_name_the_file(tmp_path):
    root = write_prompts(tmp_path)
    (root / "conversation" / "001_conv.txt").unlink()
    with pytest.raises(PromptError, match=r"001_conv.txt missing"):
        load_kind(root, "conversation")
    (root / "complex_reasoning" / "system_message.txt").unlink()
    with pytest.raises(PromptError, match=r"complex_reasoning/system_message.txt: missing"):
        load_kind(root, "complex_reasoning")
    with pytest.raises(PromptError, match="unknown kind"):
        load_prompts(root, ("captions",))


def test_reply_parsing_in_the_conv_file_form():
    reply = ("Question:\nWhat color is the bus?\n===\nAnswer:\nThe bus is red.\n\nIt has white stripes.\n===\n"
             "Question:\nIs it moving?\n===\nAnswer:\nNo, it is parked.\n")
    assert parse_turns(reply) == [("What color is the bus?", "The bus is red.\n\nIt has white stripes."),
                                  ("Is it moving?", "No, it is parked.")]
    assert parse_reply("detail_description", "  A red bus.\n") == "A red bus."
    for bad, reason in [("I'm sorry, I cannot see images.", "refusal"),
                        ("Question:\nWhat?\n===\nQuestion:\nWhy?", "format"),
                        ("Question:\nWhat color?", "format"),
                        ("Here is a conversation about the bus.", "format"),
                        ("", "empty")]:
        with pytest.raises(Malformed) as err:
            parse_turns(bad)
        assert err.value.reason == reason, bad
    with pytest.raises(Malformed) as err:
        parse_description("Question:\nWhat?\n===\nAnswer:\nA bus.")
    assert err.value.reason == "format"


def test_records_have_the_released_layout():
    turns = [("What color is the bus?", "Red."), ("Is it parked?", "Yes.")]
    rec = make_record(33471, "conversation", turns, seed=0)
    assert rec["id"] == "000000033471" and rec["image"] == "000000033471.jpg"
    assert [t["from"] for t in rec["conversations"]] == ["human", "gpt", "human", "gpt"]
    first = rec["conversations"][0]["value"]
    assert first in ("<image>\nWhat color is the bus?", "What color is the bus?\n<image>")
    assert all("<image>" not in t["value"] for t in rec["conversations"][1:])
    assert make_record(33471, "conversation", turns, seed=0) == rec  # the same draw every time
    places = {make_record(i, "conversation", turns, seed=0)["conversations"][0]["value"].startswith("<image>")
              for i in range(20)}
    assert places == {True, False}  # both placements occur, as in the released file
    detail = make_record(5, "detail_description", "A red bus.", seed=0, detail_prompts=("Describe it.",))
    assert detail["conversations"][1] == {"from": "gpt", "value": "A red bus."}
    assert detail["conversations"][0]["value"].replace("<image>", "").strip() == "Describe it."
    with pytest.raises(ValueError, match="detail_prompts"):
        make_record(5, "detail_description", "A red bus.", seed=0)


# ----------------------------------------------------------------------------------------------- generation
def _facts(n: int) -> list:
    from llava_core.prepare.instruct.context import ImageFacts

    return [ImageFacts(100 + i, f"{100 + i:012d}.jpg", 640, 480, [f"Picture {i} of a bus.", "A bus on a road."],
                       [("bus", [0, 0, 320, 240])] * (1 + i % 2) + [("person", [10, 10, 20, 40])]) for i in range(n)]


def _teacher_cfg(port: int):
    from types import SimpleNamespace as NS

    return NS(kind="openai", model="rule-teacher", base_url=f"http://127.0.0.1:{port}/v1", api_key_env="NO_SUCH_KEY",
              timeout_s=5, max_retries=0, backoff_s=0.0)


def _generate(tmp_path, port, cache="cache.jsonl"):
    from llava_core.chat_client import CachedChat, OpenAIChat
    from llava_core.prepare.instruct.generate import generate_instruct

    cfg = _teacher_cfg(port)
    teacher = CachedChat(cfg.model, OpenAIChat(cfg), tmp_path / cache, cfg)
    prompts = load_prompts(tmp_path / "prompts")
    return generate_instruct(_facts(5), prompts, teacher, seed=3, workers=4, detail_prompts=("Describe the image.",),
                             progress=False)


def test_generation_through_a_local_endpoint_then_a_rerun_sends_nothing(tmp_path):
    from http_util import serving

    from llava_core.prepare.instruct.rule_teacher import RuleTeacher, serve

    write_prompts(tmp_path / "prompts")
    with serving(serve(RuleTeacher())) as server:
        records, manifest = _generate(tmp_path, server.server_address[1])
        assert server.answered == manifest["requests_sent"] == 15 and manifest["replies_from_cache"] == 0
        assert manifest["tokens"]["prompt_tokens"] > 0 and manifest["tokens"]["completion_tokens"] > 0
        conv_tokens = manifest["kinds"]["conversation"].pop("tokens")
        assert manifest["kinds"]["conversation"] == {"requested": 5, "kept": 5, "dropped": {}}
        # Per kind, the tokens of the replies behind its records: all sent in this run, so they add up
        # to what the endpoint reported; the prompt side is the words of each kind's requests.
        per_kind = [conv_tokens] + [manifest["kinds"][k]["tokens"] for k in ("detail_description", "complex_reasoning")]
        assert {k: sum(t[k] for t in per_kind) for k in conv_tokens} == manifest["tokens"]
        conv_prompts = load_prompts(tmp_path / "prompts", ("conversation",))["conversation"]
        from llava_core.prepare.instruct.context import symbolic_context

        assert conv_tokens["prompt_tokens"] == sum(len(m["content"].split()) for f in _facts(5)
                                                   for m in conv_prompts.messages(symbolic_context(f, False)))
        again, manifest2 = _generate(tmp_path, server.server_address[1])
        assert server.answered == 15 and manifest2["requests_sent"] == 0 and manifest2["replies_from_cache"] == 15
        # A rerun pays nothing and still says what the set cost.
        assert manifest2["tokens"] == {"prompt_tokens": 0, "completion_tokens": 0}
        assert manifest2["kinds"]["conversation"]["tokens"] == conv_tokens
    assert again == records and len(records) == 15
    # Records come kind by kind (the prompt folder's order), image by image within a kind.
    by_kind = {"conversation": records[0:5], "detail_description": records[5:10]}
    conv = by_kind["conversation"][1]["conversations"]
    # The conversation kind's few-shot contexts have no boxes, so neither has its request: no counts.
    assert conv[1]["value"] == "Picture 1 of a bus." and len(conv) == 2
    detail = by_kind["detail_description"][1]["conversations"]
    assert detail[1]["value"].endswith("The image contains 2 buses, 1 person.")  # its context listed the boxes


def test_killed_generation_resumes_with_only_the_missing_requests(tmp_path):
    from http_util import serving

    from llava_core.chat_client import ChatError
    from llava_core.prepare.instruct.rule_teacher import RuleTeacher, serve

    write_prompts(tmp_path / "prompts")
    with serving(serve(RuleTeacher(), fail_after=6)) as dying, pytest.raises(ChatError, match="HTTP 400"):
        _generate(tmp_path, dying.server_address[1])
    assert dying.answered == 6
    with serving(serve(RuleTeacher())) as server:
        records, manifest = _generate(tmp_path, server.server_address[1])
        assert server.answered == manifest["requests_sent"] == 9 and manifest["replies_from_cache"] == 6
    with serving(serve(RuleTeacher())) as fresh:
        clean, _ = _generate(tmp_path, fresh.server_address[1], cache="clean.jsonl")
    assert records == clean


def test_malformed_reply_is_retried_once_then_dropped_and_listed(tmp_path):
    from types import SimpleNamespace as NS

    from llava_core.chat_client import CachedChat
    from llava_core.prepare.instruct.generate import generate_instruct

    class Flaky:
        """Refuses image 100's first request, answers image 101 in no known format, others well."""

        requests = 0
        refused = False

        def complete(self, messages, *, temperature, max_tokens, seed):
            self.requests += 1
            context = messages[-1]["content"]
            if "Picture 0" in context and not self.refused:
                self.refused = True
                return "I'm sorry, but I cannot help.", "flaky"
            if "Picture 1" in context:
                return "Here are some thoughts.", "flaky"
            return "Question:\nWhat is it?\n===\nAnswer:\nA bus.", "flaky"

    write_prompts(tmp_path / "prompts")
    prompts = load_prompts(tmp_path / "prompts", ("conversation",))
    teacher = CachedChat("flaky", Flaky(), tmp_path / "c.jsonl", NS(kind="rule", model="flaky"))
    records, manifest = generate_instruct(_facts(3), prompts, teacher, seed=3, workers=2, progress=False)
    assert [r["id"] for r in records] == ["000000000100", "000000000102"]
    assert manifest["kinds"]["conversation"] == {"requested": 3, "kept": 2, "dropped": {"format": 1},
                                                 "tokens": {"prompt_tokens": 0, "completion_tokens": 0}}
    assert manifest["dropped"] == [{"image_id": 101, "kind": "conversation", "reason": "format",
                                    "detail": "block 1 ('Here are some thoughts.') is not the Question:/Answer: "
                                              "block expected"}]
    assert manifest["requests_sent"] == 5  # 100 twice (refused, then answered), 101 twice, 102 once


# ----------------------------------------------------------------------------------------------- tiny world
def test_tiny_world_gives_the_teacher_coco_files_that_match_its_images(tmp_path):
    """The tiny world's captions and boxes describe the pictures themselves: each box is where the
    shape's pixels are (read back from the JPEG), and the captions name its colour and shape."""
    import json

    import numpy as np
    from PIL import Image

    from llava_core.prepare.instruct.context import coco_facts
    from llava_core.synthetic import COLORS, generate_world

    generate_world(tmp_path, seed=2, n_pretrain=10, n_finetune=120, n_eval=12, records_per_image=2)
    ann = tmp_path / "instruct" / "annotations"
    facts = coco_facts(json.loads((ann / "captions_train2017.json").read_text()),
                       json.loads((ann / "instances_train2017.json").read_text()))
    records = json.loads((tmp_path / "finetune" / "llava_v1_5_mix665k.json").read_text())
    coco = {r["image"] for r in records if r.get("image", "").startswith("coco/train2017/")}
    blank = {r["image"] for r in records if any(t["value"] == "Unanswerable" for t in r["conversations"])}
    assert {f"coco/train2017/{f.file_name}" for f in facts.values()} == coco - blank and len(facts) > 20
    for f in list(facts.values())[:25]:
        assert len(f.captions) == 5 and len(f.boxes) == 1 and f"{f.image_id:012d}.jpg" == f.file_name
        shape, (x, y, w, h) = f.boxes[0]
        color = next(c for c in COLORS if c in f.captions[0])
        assert all(shape in c.lower() and color in c.lower() for c in f.captions)
        img = np.asarray(Image.open(tmp_path / "finetune" / "coco" / "train2017" / f.file_name).convert("RGB"), float)
        near = np.linalg.norm(img - np.asarray(COLORS[color], float), axis=2) < 60
        ys, xs = np.nonzero(near)
        # JPEG blurs edges, pixels are whole and a triangle's base corners are thin: within 2.5 pixels
        # (a box off by a convention, e.g. the centre read as a corner, is ~10 pixels off). Not the
        # top edge: a triangle's apex is a point.
        assert abs(xs.min() - x) <= 2.5 and abs(xs.max() + 1 - (x + w)) <= 2.5, (f.file_name, xs.min(), x, w)
        assert abs(ys.max() + 1 - (y + h)) <= 2.5, (f.file_name, ys.max(), y, h)
    prompts = load_prompts(tmp_path / "instruct" / "prompts")
    # As in the authors' folders: the conversation examples show captions only, the others boxes too.
    assert {k: p.with_boxes for k, p in prompts.items()} == {"conversation": False, "detail_description": True,
                                                             "complex_reasoning": True}


# ----------------------------------------------------------------------------------------------- mixing
# mix665k-style records on COCO images (spec 4.2, the paper's Table 7): only the first is LLaVA-Instruct.
MIXTURE = [
    {"id": "000000033471", "image": "coco/train2017/000000033471.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
        {"from": "gpt", "value": "The bus in the image is white and red."}]},
    {"id": "000000000009", "image": "coco/train2017/000000000009.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is on the plate?\nAnswer the question using a single word or phrase."},
        {"from": "gpt", "value": "Food"}]},
    {"id": "000000000025", "image": "coco/train2017/000000000025.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is the animal?\nA. Giraffe\nB. Zebra\n"
                                   "Answer with the option's letter from the given choices directly."},
        {"from": "gpt", "value": "A"}]},
    {"id": "000000000030", "image": "coco/train2017/000000000030.jpg", "conversations": [
        {"from": "human", "value": "<image>\nPlease provide a short description for this region: [0.1, 0.2, 0.5, 0.6]"},
        {"from": "gpt", "value": "A vase."}]},
    {"id": "2354786", "image": "gqa/images/2354786.jpg", "conversations": [
        {"from": "human", "value": "<image>\nIs the sky dark?"}, {"from": "gpt", "value": "Yes"}]},
    {"id": "i6IyJda_0", "conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi!"}]},
]
FORMATS = ["Answer the question using a single word or phrase.",
           "Answer with the option's letter from the given choices directly.",
           "Please provide a short description for this region:"]


def test_mixing_extends_or_replaces_only_the_llava_instruct_records():
    from llava_core.prepare.instruct.mix import is_llava_instruct, mix_instruct

    assert [is_llava_instruct(r, "coco/train2017", FORMATS) for r in MIXTURE] == [True, False, False, False, False,
                                                                                   False]
    generated = [make_record(139, "conversation", [("What is it?", "A bus.")], seed=0)]
    extended, stats = mix_instruct(MIXTURE, generated, mode="extend", image_folder="coco/train2017",
                                   format_prompts=FORMATS)
    assert extended[:-1] == MIXTURE and extended[-1]["image"] == "coco/train2017/000000000139.jpg"
    assert stats == {"mode": "extend", "mixture_records": 6, "replaced": 0, "generated_added": 1, "records": 7}
    replaced, stats = mix_instruct(MIXTURE, generated, mode="replace", image_folder="coco/train2017/",
                                   format_prompts=FORMATS)
    assert [r["id"] for r in replaced] == ["000000000009", "000000000025", "000000000030", "2354786", "i6IyJda_0",
                                           "000000000139"]
    assert stats["replaced"] == 1 and stats["records"] == 6
    # LLaVA-1.0's stage 2 (llava_instruct_150k.json, images named without a folder) is all LLaVA-Instruct.
    released = {**MIXTURE[0], "image": "000000033471.jpg"}
    assert is_llava_instruct(released, "", []) and not is_llava_instruct(MIXTURE[0], "", [])
    only, stats = mix_instruct([released], generated, mode="replace", image_folder="", format_prompts=[])
    assert only == generated and stats["replaced"] == 1
    with pytest.raises(ValueError, match="extend or replace"):
        mix_instruct(MIXTURE, generated, mode="add", image_folder="coco/train2017", format_prompts=FORMATS)


# ----------------------------------------------------------------------------------------------- real preset
def test_real_preset_fetches_its_pinned_sources_from_a_mirror_and_generates(tmp_path):
    """The llava-v1.5 preset's instruct job against a mirror on 127.0.0.1 holding COCO's annotation
    archive and a prompt folder in the authors' layout (our texts): the pinned checksums refuse
    the stand-in prompt files; unpinned, the job fetches, generates with the rule teacher over
    HTTP, and writes records of the chosen images."""
    import io
    import json
    import subprocess
    import sys
    import zipfile
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from http_util import serving

    from llava_core.config.compose import load_experiment, to_dict

    mirror = tmp_path / "mirror"
    cfg = load_experiment("llava-v1.5-7b")
    sources = to_dict(cfg.data.instruct.sources)
    assert all(s["sha256"] and s["size"] for s in sources if "prompts" in s["dest"])  # pinned, as POPE's labels
    prompts = write_prompts(tmp_path / "prompts")
    for s in sources:
        host_path = s["url"].split("://", 1)[1]
        target = mirror / host_path
        target.parent.mkdir(parents=True, exist_ok=True)
        if s["unpack"] == "zip":
            images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in (9, 25, 30)]
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("annotations/captions_train2017.json", json.dumps({"images": images, "annotations": [
                    {"id": k, "image_id": i, "caption": f"Caption {k} of image {i}."}
                    for k, i in enumerate([9, 9, 25, 25, 30])]}))
                zf.writestr("annotations/instances_train2017.json", json.dumps({
                    "images": images, "categories": [{"id": 6, "name": "bus"}],
                    "annotations": [{"id": 1, "image_id": 25, "category_id": 6, "bbox": [64, 48, 320, 240]}]}))
            target.write_bytes(buf.getvalue())
        else:  # the preset's further few-shot pairs repeat our first one
            rel = Path(s["dest"].split("prompts/", 1)[1])
            src = prompts / rel
            if not src.exists():
                src.write_bytes((src.parent / ("000" + rel.name[3:])).read_bytes())
            target.write_bytes(src.read_bytes())
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(mirror)))
    with serving(server):
        base = [f"data.mirror=http://127.0.0.1:{server.server_address[1]}", "data.instruct.generate.enabled=true",
                "data.instruct.generate.teacher.kind=rule", "data.instruct.generate.num_images=2"]

        def instruct(overrides: list[str]) -> subprocess.CompletedProcess:
            args = [sys.executable, "-m", "llava_core.cli", "instruct", "llava-v1.5-7b", "--data-dir",
                    str(tmp_path / "data"), "--results", str(tmp_path / "results")]
            for o in overrides:
                args += ["-o", o]
            return subprocess.run(args, capture_output=True, text=True, timeout=300)

        pinned = instruct(base)
        assert pinned.returncode != 0 and "prompts-conversation-system" in pinned.stderr, pinned.stderr[-2000:]
        assert "checksum mismatch" in pinned.stderr and "Traceback" not in pinned.stderr
        assert not (tmp_path / "data" / "instruct" / "llava_instruct.json").exists()
        unpinned = base + [f"data.instruct.sources.{i}.{k}=null" for i, s in enumerate(sources)
                           if s["sha256"] for k in ("sha256", "size")]
        done = instruct(unpinned)
        assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads((tmp_path / "data" / "instruct" / "llava_instruct.json").read_text())
    manifest = json.loads((tmp_path / "data" / "instruct" / "manifest.json").read_text())
    assert manifest["images"] == {"captioned": 3, "asked": 2} and manifest["records"] == len(records) == 6
    assert manifest["prompts_sha256"]["conversation/000_caps.txt"] == hashlib_sha256(prompts / "conversation" /
                                                                                     "000_caps.txt")
    assert {r["image"] for r in records} <= {"000000000009.jpg", "000000000025.jpg", "000000000030.jpg"}
    # Kind by kind, image by image: the detailed descriptions answer the preset's instructions.
    asked = {r["conversations"][0]["value"].replace("<image>", "").strip() for r in records[2:4]}
    assert asked <= set(cfg.data.instruct.generate.detail_instructions)
    lock = json.loads((tmp_path / "data" / "instruct.lock.json").read_text())
    assert len(lock["sources"]) == len(sources)


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- released layout
FIXTURES = Path(__file__).parent / "fixtures"


def _shape(record: dict) -> tuple:
    """What a consumer of llava_instruct_150k.json relies on: keys in order, their types, the id's
    form, the image's name, turns alternating from a human, and <image> on its own line at the
    start or end of the first human turn only."""
    turns = record["conversations"]
    first = turns[0]["value"]
    return (list(record), type(record["id"]), bool(re.fullmatch(r"\d{12}", record["id"])),
            record["image"] == f"{record['id']}.jpg", [list(t) for t in turns],
            [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2),
            first.startswith("<image>\n") or first.endswith("\n<image>"),
            sum("<image>" in t["value"] for t in turns))


def test_generated_records_have_the_shape_of_the_released_file():
    """Against the first record of the released llava_instruct_150k.json (tests/fixtures)."""
    import json

    released = json.loads((FIXTURES / "llava_instruct_150k_head.json").read_text())[0]
    turns = [(released["conversations"][i]["value"].replace("\n<image>", ""), released["conversations"][i + 1]["value"])
             for i in range(0, len(released["conversations"]), 2)]
    for image_id in (33471, 9, 574769):
        ours = make_record(image_id, "conversation", turns, seed=0)
        assert _shape(ours) == _shape(released)
    assert make_record(33471, "conversation", turns, seed=0)["conversations"][1:] == released["conversations"][1:]
    assert make_record(33471, "conversation", turns, seed=0)["conversations"][0]["value"] in (
        released["conversations"][0]["value"], "<image>\n" + turns[0][0])
