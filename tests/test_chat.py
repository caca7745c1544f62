"""Talking to a model: `llava-core chat` on the tiny DAG's model gives the evaluation's answers
(same prompt, image, stop token), chains turns as the training text renders them, works driven
through a terminal, and loads 8-bit and 4-bit (bitsandbytes on the CPU), whose evaluations the
reports mark as quantised."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run

from llava_core.data.conversation import render, render_prompt

#: Benchmarks whose questions come with an image file, and questions asked of each.
ASKED = {"pope": 3, "gqa": 3, "textvqa": 2, "vizwiz": 2}


@pytest.fixture(scope="module")
def tiny(tiny_local) -> dict:
    from llava_core.evaluate.benchmarks import get_benchmark

    eval_root = tiny_local / "data" / "tiny" / "eval"
    asked = []
    for bench, n in ASKED.items():
        answers = {str(a["question_id"]): a["text"] for a in map(json.loads,
                   (tiny_local / "tiny" / "eval" / bench / "answers.jsonl").read_text().splitlines())}
        asked += [(q, answers[str(q.question_id)]) for q in get_benchmark(bench).load_questions(eval_root)[:n]]
    return {"results": tiny_local, "model": tiny_local / "tiny" / "finetune" / "model", "asked": asked}


def chat(tiny: dict, *args: str, check: bool = True):
    return run(["llava-core", "chat", "tiny", "--results", str(tiny["results"]), "--max-new-tokens", "16", *args],
               check=check)


def test_a_chat_answers_each_question_as_the_evaluation_did(tiny):
    from llava_core.evaluate.run import load_for_eval
    from llava_core.serve.session import ChatSession, Sampling

    session = ChatSession(load_for_eval(tiny["model"], "fp32"), "vicuna_v1", "pad", Sampling(max_new_tokens=16))
    got = []
    for q, _ in tiny["asked"]:
        session.set_image(q.image)
        got.append(session.ask(q.text))
    assert got == [a for _, a in tiny["asked"]]
    assert len(set(got)) > 1  # the image and question decide the answer


def test_follow_up_turns_are_rendered_as_the_training_text(tiny):
    from transformers import AutoTokenizer

    history = [("What is it?", "A red circle."), ("And the background?", "Gray.")]
    prompt = render_prompt("vicuna_v1", "Anything else?", has_image=True, history=history)
    record = [{"from": f, "value": v} for q, a in history for f, v in (("human", q), ("gpt", a))]
    record[0]["value"] = "<image>\n" + record[0]["value"]
    assert prompt.startswith(render("vicuna_v1", record, has_image=True).text)
    assert prompt.endswith("</s>USER: Anything else? ASSISTANT:")
    assert render_prompt("vicuna_v1", "Q", has_image=True, history=()) == render_prompt("vicuna_v1", "Q", has_image=True)
    # The chat template: apply_chat_template of the whole conversation with the generation prompt.
    sys.path.insert(0, str(ROOT / "scripts"))
    from fetch_vocab import vocab_dir

    tok = AutoTokenizer.from_pretrained(str(vocab_dir("llama3")))
    messages = [{"role": r, "content": c} for q, a in history for r, c in (("user", q), ("assistant", a))]
    messages[0]["content"] = "<image>\n" + messages[0]["content"]
    expected = tok.apply_chat_template(messages + [{"role": "user", "content": "Anything else?"}], tokenize=False,
                                       add_generation_prompt=True)
    assert render_prompt("chat", "Anything else?", has_image=True, tokenizer=tok, history=history) == expected
    with pytest.raises(ValueError, match="plain template"):
        render_prompt("plain", "q", has_image=True, history=history)


def test_ask_answers_two_turns_the_first_as_the_evaluation(tiny, tmp_path):
    q, evaluated = tiny["asked"][0]
    out = chat(tiny, "--image", str(q.image), "--ask", q.text, "--ask", "What colour is the shape?",
               "--save", str(tmp_path / "conv.json")).stdout
    answers = [line.removeprefix("ASSISTANT: ") for line in out.splitlines() if line.startswith("ASSISTANT: ")]
    assert len(answers) == 2 and answers[0] == evaluated
    (saved,) = json.loads((tmp_path / "conv.json").read_text())
    assert saved["image"] == str(q.image)
    assert [t["value"] for t in saved["conversations"]] == [f"<image>\n{q.text}", answers[0],
                                                            "What colour is the shape?", answers[1]]
    from llava_core.data.formats import validate_record

    validate_record(saved, tmp_path / "conv.json", 0)  # a LLaVA training record
    bad = chat(tiny, "--image", str(tmp_path / "conv.json"), "--ask", "hi", check=False)
    assert bad.returncode == 2 and "not an image this machine can decode" in bad.stderr


def test_an_interactive_chat_driven_through_a_terminal(tiny, tmp_path):
    import pexpect

    from llava_core.evaluate.run import load_for_eval
    from llava_core.serve.session import ChatSession, Sampling

    (q1, _), (q2, _) = tiny["asked"][0], tiny["asked"][3]
    typed = q1.text.replace("\n", " ")  # one line at the prompt
    session = ChatSession(load_for_eval(tiny["model"], "fp32"), "vicuna_v1", "pad", Sampling(max_new_tokens=16))
    session.set_image(q1.image)
    expected = [session.ask(typed), session.ask("What is in the background?")]
    child = pexpect.spawn(str(Path(sys.executable).parent / "llava-core"),
                          ["chat", "tiny", "--results", str(tiny["results"]), "--max-new-tokens", "16"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120)
    try:
        child.expect("commands: /image PATH")
        child.expect("USER: ")
        child.sendline(f"/image {q1.image}")
        child.expect(r"\(image .*; a new conversation\)")
        child.sendline(typed)
        child.expect(r"ASSISTANT: (.*?)\r\n")
        first = child.match.group(1).strip()
        child.sendline("What is in the background?")
        child.expect(r"ASSISTANT: (.*?)\r\n")
        second = child.match.group(1).strip()
        child.sendline(f"/save {tmp_path / 'c.json'}")
        child.expect("saved")
        child.sendline("/image /no/such/file.png")
        child.expect("error: /no/such/file.png: no such image file")
        child.sendline("/reset")
        child.expect("conversation and image cleared")
        child.sendline(f"/image {q2.image}")
        child.expect("a new conversation")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    (saved,) = json.loads((tmp_path / "c.json").read_text())
    # What streamed to the terminal is the session's answer, turn after turn, and what was saved.
    assert [first, second] == expected == [t["value"] for t in saved["conversations"]][1::2]


@pytest.mark.parametrize("mode", ["8bit", "4bit"])
def test_a_quantised_evaluation_runs_agrees_with_fp32_and_is_marked(tiny, tmp_path, mode):
    out = tmp_path / "pope"
    run(["llava-core", "evaluate", "tiny", "pope", "--results", str(tmp_path), "--model", str(tiny["model"]),
         "--data-dir", str(tiny["results"] / "data" / "tiny"), "--out", str(out),
         "-o", f"evaluation.quantization={mode}"])
    scores = json.loads((out / "scores.json").read_text())
    assert scores["quantization"] == mode
    mine = [json.loads(x)["text"] for x in (out / "answers.jsonl").read_text().splitlines()]
    full = [json.loads(x)["text"] for x in (tiny["results"] / "tiny" / "eval" / "pope" / "answers.jsonl")
            .read_text().splitlines()]
    assert len(mine) == len(full) == scores["num_questions"]
    agree = sum(a == b for a, b in zip(mine, full, strict=True)) / len(full)
    assert agree >= 0.9, f"{mode}: {agree:.1%} of POPE answers equal fp32's"
    header = json.loads((out / "answers.partial.jsonl").read_text().splitlines()[0])["header"]
    assert header["settings"]["quantization"] == mode

    from llava_core.evaluate.report import write_report, write_summary

    fp32 = json.loads((tiny["results"] / "tiny" / "eval" / "pope" / "scores.json").read_text())
    write_report("q", "llava-v1.5-7b", {"pope": scores, "gqa": {**fp32, "benchmark": "gqa", "title": "GQA"}},
                 tmp_path / "q")
    report = (tmp_path / "q" / "report.md").read_text()
    mark = mode.replace("bit", "-bit")
    assert f"| POPE ({mark}) |" in report and "| GQA |" in report and "not a reproduction" in report
    (tmp_path / "q" / "report_config").mkdir()
    (tmp_path / "q" / "report_config" / "stage_config.json").write_text(json.dumps({"paper_row": "llava-v1.5-7b"}))
    write_summary({"q": tmp_path / "q" / "report.csv"}, tmp_path / "summary.md")
    summary = (tmp_path / "summary.md").read_text()
    assert f"| q ({mark}) |" in summary and "not a reproduction" in summary


def test_bad_quantization_and_missing_models_say_what_to_do(tmp_path):
    bad = run(["llava-core", "config", "tiny", "-o", "evaluation.quantization=3bit"], check=False)
    assert bad.returncode == 2 and "evaluation.quantization" in bad.stderr and "4bit" in bad.stderr
    missing = run(["llava-core", "chat", "tiny", "--results", str(tmp_path), "--ask", "hi"], check=False)
    assert missing.returncode == 2 and "has no final model yet" in missing.stderr and "snakemake" in missing.stderr
