"""`llava-core demo` in a real browser (Debian's chromium driven by Playwright): upload an image,
ask, and read two models' answers side by side; an image that does not decode is refused with a
message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="needs Debian's chromium (apt-get install chromium) and playwright")


@pytest.fixture(scope="module")
def demo(tiny_local, tmp_path_factory):
    """The demo on the tiny run's variants plus the same model under a second name, on 127.0.0.1."""
    import sys

    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    model = tiny_local / "tiny" / "finetune" / "model"
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "llava-core"), "demo", "--results", str(tiny_local),
                                 "--model", f"again={model}", "--port", str(port)],
                                cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"the demo exited {proc.returncode}:\n{log.read_text()}") from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError(f"the demo did not answer within 120 s:\n{log.read_text()}")
    yield {"url": url, "log": log, "results": tiny_local}
    proc.terminate()
    proc.wait(timeout=30)


def _page(p, url):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-quic",
                                                                "--no-first-run", "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # No internet in CI: only the local server is reachable (fonts and the like are refused).
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url, wait_until="domcontentloaded", timeout=120_000)
    page.locator("#question textarea").wait_for(timeout=120_000)
    return browser, page


def test_two_models_answer_side_by_side_as_the_evaluation_did(demo, tmp_path):
    from playwright.sync_api import sync_playwright

    from llava_core.evaluate.benchmarks import get_benchmark

    results = demo["results"]
    q = get_benchmark("pope").load_questions(results / "data" / "tiny" / "eval")[0]
    evaluated = {str(a["question_id"]): a["text"] for a in map(
        json.loads, (results / "tiny" / "eval" / "pope" / "answers.jsonl").read_text().splitlines())}
    expected = evaluated[str(q.question_id)]
    assert f"listening on http://127.0.0.1:{demo['url'].rsplit(':', 1)[1].strip('/')}" in demo["log"].read_text()
    with sync_playwright() as p:
        browser, page = _page(p, demo["url"])
        assert page.locator("#model-a input").input_value() == "tiny"
        assert page.locator("#model-b input").input_value() == "again"
        page.locator("#image-file input[type=file]").set_input_files(str(q.image))
        page.get_by_text(Path(q.image).name[:12]).first.wait_for(timeout=30_000)
        page.locator("#question textarea").fill(q.text)  # with the eval's answer-format line
        page.locator("#ask").click()
        answers = []
        for col in ("#chat-a", "#chat-b"):
            bot = page.locator(f"{col} .message.bot").last
            bot.wait_for(timeout=120_000)
            page.wait_for_function("() => !document.querySelector('.generating')", timeout=120_000)
            answers.append(bot.inner_text().strip())
        page.screenshot(path=str(tmp_path / "demo.png"))
        browser.close()
    assert answers == [expected, expected], (answers, expected)


def test_an_image_that_does_not_decode_is_refused_with_a_message(demo, tmp_path):
    from playwright.sync_api import sync_playwright

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all" * 10)
    with sync_playwright() as p:
        browser, page = _page(p, demo["url"])
        page.locator("#image-file input[type=file]").set_input_files(str(broken))
        page.get_by_text("broken.png").first.wait_for(timeout=30_000)
        page.locator("#question textarea").fill("What is it?")
        page.locator("#ask").click()
        page.get_by_text("This image cannot be used").first.wait_for(timeout=60_000)
        text = page.locator("body").inner_text()
        browser.close()
    assert "not an image this machine can decode" in text
