"""The judge of LLaVA-Bench and MM-Vet against a local OpenAI-compatible server with canned replies:
official prompts and review formats, passes, retries on 429/5xx, resuming, caching, and no key leaks."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from llava_core.chat_client import ChatError
from llava_core.data.formats import make_answer
from llava_core.evaluate.benchmarks import get_benchmark
from llava_core.evaluate.judge import (
    CACHE_FILE,
    LLAVA_BENCH_SYSTEM,
    MM_VET_PROMPT,
    MM_VET_RETRY_SUFFIX,
    judge_benchmark,
    parse_review_score,
)

SECRET = "sk-test-DO-NOT-LEAK-31337"
KEY_ENV = "LLAVA_CORE_TEST_JUDGE_KEY"


class Server:
    """Chat-completions on 127.0.0.1: LLaVA-Bench reviews "8 7", MM-Vet grades "0.5" ("maybe"
    for a prediction containing 'garbled' unless asked again with the digit suffix)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail: list[int] = []  # statuses to answer first, one per request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if outer.fail:
                    status = outer.fail.pop(0)
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                msgs = body["messages"]
                if msgs[0]["role"] == "system":
                    reply = "8 7\nAssistant 2 is a bit less detailed."
                else:
                    text = msgs[-1]["content"]
                    reply = "maybe so" if "garbled" in text and not text.endswith(MM_VET_RETRY_SUFFIX) else "0.5"
                out = json.dumps({"model": body["model"] + "-served",
                                  "choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    s = Server()
    yield s
    s.close()


def judge_cfg(url: str, **kw) -> NS:
    base = dict(kind="openai", model="judge-x", base_url=url, api_key_env=KEY_ENV, passes=3, temperature=0.2,
                max_tokens=1024, timeout_s=10.0, max_retries=3, backoff_s=0.01)
    return NS(**{**base, **kw})


def llava_bench_root(root: Path) -> list[dict]:
    d = root / "llava-bench-in-the-wild"
    d.mkdir(parents=True)
    qs = [{"question_id": i, "image": f"{i // 2:03d}.jpg", "text": f"Question {i}?", "category": c}
          for i, c in enumerate(["conv", "detail", "complex", "conv"])]
    (d / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    (d / "context.jsonl").write_text("".join(json.dumps({"id": k, "image": f"{k:03d}.jpg",
                                                         "caption": [f"caption {k}a", f"caption {k}b"]}) + "\n"
                                             for k in range(2)))
    (d / "answers_gpt4.jsonl").write_text("".join(json.dumps({"question_id": q["question_id"],
                                                              "text": f"Reference {q['question_id']}.",
                                                              "answer_id": f"ref{q['question_id']}"}) + "\n"
                                                  for q in qs))
    return [make_answer(q["question_id"], q["text"], f"Model answer {q['question_id']}.", "llava-test") for q in qs]


def mm_vet_root(root: Path) -> list[dict]:
    d = root / "mm-vet"
    d.mkdir(parents=True)
    qs = [{"question_id": i, "image": f"v1_{i}.png", "text": f"What is {i}?"} for i in range(3)]
    (d / "llava-mm-vet.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    meta = {f"v1_{i}": {"question": f"What is {i}?", "answer": "a<AND>b", "capability": ["rec", "ocr"][: 1 + i % 2],
                        "imagename": f"v1_{i}.png"} for i in range(3)}
    (d / "mm-vet.json").write_text(json.dumps(meta))
    texts = ["a and b", "garbled", "b"]
    return [make_answer(i, q["text"], texts[i], "llava-test") for i, q in enumerate(qs)]


def all_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_llava_bench_reviews_follow_the_official_format(server, tmp_path):
    answers = llava_bench_root(tmp_path / "eval")
    out = tmp_path / "out"
    paths, judge = judge_benchmark(judge_cfg(server.url), "llava_bench", tmp_path / "eval", answers, out)
    assert [p.name for p in paths] == ["judge-x-eval1.jsonl", "judge-x-eval2.jsonl", "judge-x-eval3.jsonl"]
    assert len(server.requests) == 4 * 3 and judge.requests == 12
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["model"] == "judge-x" and body["temperature"] == 0.2 and body["max_tokens"] == 1024
    assert body["messages"][0] == {"role": "system", "content": LLAVA_BENCH_SYSTEM}
    user = body["messages"][1]["content"]
    assert user.startswith("[Context]\ncaption 0a\ncaption 0b\n\n[Question]\nQuestion 0?\n\n"
                           "[Assistant 1]\nReference 0.\n\n[End of Assistant 1]\n\n"
                           "[Assistant 2]\nModel answer 0.\n\n[End of Assistant 2]\n\n[System]\n")
    assert "represented with a few sentences describing the image. \nPlease rate the helpfulness" in user
    assert user.endswith("does not affect your judgment.\n\n")
    rows = [json.loads(line) for line in paths[0].read_text().splitlines()]
    assert rows[0] == {"id": 1, "question_id": 0, "answer1_id": "ref0", "answer2_id": answers[0]["answer_id"],
                       "category": "llava_bench_conv", "content": "8 7\nAssistant 2 is a bit less detailed.",
                       "tuple": [8.0, 7.0]}
    res = get_benchmark("llava_bench").score(tmp_path / "eval", answers, reviews=paths)
    assert res.score == pytest.approx(7 / 8 * 100) and len(res.breakdown["runs"]) == 3


def test_rescoring_is_served_from_the_cache(server, tmp_path):
    answers = llava_bench_root(tmp_path / "eval")
    out = tmp_path / "out"
    first, _ = judge_benchmark(judge_cfg(server.url), "llava_bench", tmp_path / "eval", answers, out)
    before = [p.read_text() for p in first]
    n = len(server.requests)
    again, judge = judge_benchmark(judge_cfg(server.url), "llava_bench", tmp_path / "eval", answers, out)
    assert len(server.requests) == n and judge.requests == 0 and judge.cached == 12
    assert [p.read_text() for p in again] == before
    # one more pass asks only for the new pass; another judge model asks afresh
    judge_benchmark(judge_cfg(server.url, passes=4), "llava_bench", tmp_path / "eval", answers, out)
    assert len(server.requests) == n + 4
    judge_benchmark(judge_cfg(server.url, model="judge-y", passes=1), "llava_bench", tmp_path / "eval", answers, out)
    assert len(server.requests) == n + 8
    # a changed answer is a new prompt: only it is judged again
    changed = [dict(answers[0], text="Another answer."), *answers[1:]]
    judge_benchmark(judge_cfg(server.url, passes=1), "llava_bench", tmp_path / "eval", changed, out)
    assert len(server.requests) == n + 9


def test_429_and_5xx_are_retried_with_backoff(server, tmp_path, monkeypatch):
    answers = llava_bench_root(tmp_path / "eval")
    waits = []
    monkeypatch.setattr("llava_core.chat_client.time.sleep", waits.append)
    server.fail = [429, 503]
    paths, judge = judge_benchmark(judge_cfg(server.url, passes=1), "llava_bench", tmp_path / "eval", answers,
                                   tmp_path / "out")
    assert len(server.requests) == 4 + 2 and judge.requests == 6
    assert waits == [pytest.approx(0.01), pytest.approx(0.02)]  # exponential
    assert all(json.loads(line)["tuple"] == [8.0, 7.0] for line in paths[0].read_text().splitlines())


def test_a_judge_that_gives_up_resumes_where_it_stopped(server, tmp_path, monkeypatch):
    from llava_core import chat_client as judge_mod

    monkeypatch.setattr(judge_mod.time, "sleep", lambda s: None)
    answers = llava_bench_root(tmp_path / "eval")
    out = tmp_path / "out"
    cfg = judge_cfg(server.url, passes=1, max_retries=2)
    real = judge_mod.OpenAIChat.complete
    calls = []

    def complete(self, *a, **kw):  # two good replies, then the server fails past max_retries
        calls.append(1)
        if len(calls) == 3:
            server.fail = [500] * 3
        return real(self, *a, **kw)

    monkeypatch.setattr(judge_mod.OpenAIChat, "complete", complete)
    with pytest.raises(ChatError, match="HTTP 500 after 3 tries"):
        judge_benchmark(cfg, "llava_bench", tmp_path / "eval", answers, out)
    assert len((out / CACHE_FILE).read_text().splitlines()) == 2
    assert not (out / "reviews").exists()
    monkeypatch.setattr(judge_mod.OpenAIChat, "complete", real)
    n = len(server.requests)
    _, judge = judge_benchmark(cfg, "llava_bench", tmp_path / "eval", answers, out)
    assert judge.cached == 2 and judge.requests == 2 and len(server.requests) == n + 2


def test_client_errors_are_not_retried(server, tmp_path):
    answers = llava_bench_root(tmp_path / "eval")
    server.fail = [401]
    with pytest.raises(ChatError, match="HTTP 401") as e:
        judge_benchmark(judge_cfg(server.url), "llava_bench", tmp_path / "eval", answers, tmp_path / "out")
    assert len(server.requests) == 1 and SECRET not in str(e.value)


def test_mm_vet_grades_follow_the_official_grader(server, tmp_path):
    answers = mm_vet_root(tmp_path / "eval")
    paths, _ = judge_benchmark(judge_cfg(server.url, passes=2), "mm_vet", tmp_path / "eval", answers,
                               tmp_path / "out", model_name="llava-v1.5-7b")
    assert [p.name for p in paths] == ["llava-v1.5-7b_judge-x-grade-2runs.json"]
    grades = json.loads(paths[0].read_text())
    assert set(grades) == {"v1_0", "v1_1", "v1_2"}
    assert grades["v1_0"] == {"model": ["judge-x-served"] * 2, "content": ["0.5"] * 2, "score": [0.5, 0.5]}
    first = server.requests[0]["body"]
    assert first["messages"] == [{"role": "user", "content": MM_VET_PROMPT + "\nWhat is 0? | a <AND> b | a and b | "}]
    assert first["temperature"] == 0.0 and first["max_tokens"] == 3
    # 'garbled' got a non-number, then was asked again with the digit suffix at temperature 0
    retry = [r["body"] for r in server.requests if r["body"]["messages"][0]["content"].endswith(MM_VET_RETRY_SUFFIX)]
    assert len(retry) == 2 and retry[0]["temperature"] == 0.0
    res = get_benchmark("mm_vet").score(tmp_path / "eval", answers, out_dir=tmp_path / "out", reviews=paths)
    assert res.score == pytest.approx(50.0) and res.breakdown["runs"] == [50.0, 50.0]


def test_parse_review_score():
    assert parse_review_score("8 7\nwhy") == [8.0, 7.0]
    assert parse_review_score("8,7\nwhy") == [8.0, 7.0]
    assert parse_review_score("8, 7\nwhy") == [-1.0, -1.0]  # upstream quirk: "8  7" splits in 3 parts
    assert parse_review_score("Scores: 8 7") == [-1.0, -1.0]


def test_run_records_the_judge_and_never_the_key(server, tmp_path, caplog):
    from llava_core.config.compose import load_experiment
    from llava_core.evaluate.run import score_answers

    answers = llava_bench_root(tmp_path / "eval")
    cfg = load_experiment("llava-v1.5-7b", ["evaluation.judge.kind=openai", "evaluation.judge.model=judge-x",
                                            f"evaluation.judge.base_url='{server.url}'",
                                            f"evaluation.judge.api_key_env={KEY_ENV}", "evaluation.judge.passes=2"])
    logged: dict = {}
    run = NS(log_params=logged.update, log_metrics=lambda m, on_parent=False: logged.update(m),
             log_artifact=lambda p, a=None: None)
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG):
        res = score_answers(cfg, "llava_bench", answers, eval_root=tmp_path / "eval", out_dir=out, run=run,
                            num_questions=4)
    assert res["judge"]["model"] == "judge-x" and res["judge"]["passes"] == 2 and len(res["judge"]["reviews"]) == 2
    assert logged["eval.judge.model"] == "judge-x" and logged["eval.judge.served_models"] == "judge-x-served"
    assert logged["eval/llava_bench/score"] == pytest.approx(87.5)
    assert json.loads((out / "scores.json").read_text())["judge"]["kind"] == "openai"
    # the key went out in the request header, and nowhere else
    assert server.requests[0]["auth"] == f"Bearer {SECRET}"
    assert SECRET not in all_text(tmp_path) and SECRET not in caplog.text and SECRET not in json.dumps(logged)


def test_judged_benchmark_without_a_judge_asks_for_reviews(tmp_path):
    from llava_core.config.compose import load_experiment
    from llava_core.evaluate.benchmarks.base import ReviewsRequired
    from llava_core.evaluate.run import score_answers

    answers = llava_bench_root(tmp_path / "eval")
    cfg = load_experiment("llava-v1.5-7b")
    run = NS(log_params=lambda p: None, log_metrics=lambda m, on_parent=False: None, log_artifact=lambda *a: None)
    with pytest.raises(ReviewsRequired):
        score_answers(cfg, "llava_bench", answers, eval_root=tmp_path / "eval", out_dir=tmp_path / "o", run=run,
                      num_questions=4)


def test_local_judge_runs_a_transformers_model(tmp_path):
    from llava_core.evaluate.tiny_llava import CORPUS, SYNTHETIC
    from llava_core.model.tiny import build_tiny_parts

    build_tiny_parts(tmp_path / "parts", CORPUS, SYNTHETIC)
    answers = mm_vet_root(tmp_path / "eval")
    cfg = judge_cfg("", kind="local", model=str(tmp_path / "parts" / "tiny-llm"), passes=1)
    paths, judge = judge_benchmark(cfg, "mm_vet", tmp_path / "eval", answers, tmp_path / "out")
    grades = json.loads(paths[0].read_text())
    assert set(grades) == {"v1_0", "v1_1", "v1_2"} and all(len(g["score"]) == 1 for g in grades.values())
    assert judge.requests >= 3


def test_evaluate_cli_judges_and_mlflow_records_the_judge(server, tmp_path, capsys):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from llava_core.cli import main
    from llava_core.evaluate.tiny_llava import build_tiny_llava

    build_tiny_llava(tmp_path / "parts", save_to=tmp_path / "model")
    llava_bench_root(tmp_path / "eval")
    (tmp_path / "eval" / "llava-bench-in-the-wild" / "images").mkdir()
    for k in range(2):
        Image.new("RGB", (30, 20), (50 * k, 90, 200)).save(tmp_path / "eval" / "llava-bench-in-the-wild" / "images"
                                                            / f"{k:03d}.jpg")
    argv = ["evaluate", "tiny", "llava_bench", "--model", str(tmp_path / "model"), "--data-dir", str(tmp_path),
            "--eval-root", str(tmp_path / "eval"), "--out", str(tmp_path / "out"), "--results", str(tmp_path / "res"),
            "-o", "+evaluation.benchmarks.llava_bench={max_new_tokens: 8}", "-o", "evaluation.judge.kind=openai",
            "-o", "evaluation.judge.model=judge-x", "-o", f"evaluation.judge.base_url='{server.url}'",
            "-o", f"evaluation.judge.api_key_env={KEY_ENV}", "-o", "evaluation.judge.passes=2"]
    assert main(argv) == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["score"] == pytest.approx(87.5) and scores["judge"]["model"] == "judge-x"
    assert len(list((tmp_path / "out" / "reviews").glob("judge-x-eval*.jsonl"))) == 2
    client = MlflowClient(f"sqlite:///{tmp_path / 'res' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("llava-core").experiment_id])
    child = next(r for r in runs if r.data.tags.get("llava.stage") == "eval/llava_bench")
    assert child.data.params["eval.judge.model"] == "judge-x" and child.data.params["judge.kind"] == "openai"
    assert child.data.metrics["eval/llava_bench/score"] == pytest.approx(87.5)
    n = len(server.requests)
    assert main(argv) == 0  # rerun: answers resumed from the partial file, reviews from the cache
    assert len(server.requests) == n
    assert SECRET not in all_text(tmp_path) and SECRET not in capsys.readouterr().err


def test_rule_judge_is_an_offline_word_overlap_stand_in():
    from llava_core.config.compose import load_experiment
    from llava_core.evaluate.judge import MM_VET_PROMPT, RuleChat, llava_bench_content, mm_vet_content

    rule = RuleChat()
    rule_prompt = {"role": "Assistant", "prompt": "Rate them."}
    ask = lambda content: rule.complete([{"role": "user", "content": content}], temperature=0.0,  # noqa: E731
                                        max_tokens=3, seed=0)[0]
    assert ask(llava_bench_content(["c"], "Q?", "The circle is red.", "The circle is red.", rule_prompt)
               ).startswith("10 10\n")
    assert ask(llava_bench_content(["c"], "Q?", "The circle is red.", "It is red.", rule_prompt)).startswith("10 5\n")
    assert ask(llava_bench_content(["c"], "Q?", "The circle is red.", "blue", rule_prompt)).startswith("10 1\n")
    assert ask(mm_vet_content("Q?", "red<AND>circle", "a red circle")) == "1.0"
    assert ask(mm_vet_content("Q?", "red<AND>circle", "a red square")) == "0.5"
    assert ask(mm_vet_content("Q?", "left<OR>left side", "on the left")) == "1.0"
    assert ask(mm_vet_content("Q?", "blue", "red", retry=True)) == "0.0"
    assert MM_VET_PROMPT and rule.requests == 7
    cfg = load_experiment("tiny")
    assert cfg.evaluation.judge.kind == "rule" and cfg.evaluation.judge.model is None  # no model needed
