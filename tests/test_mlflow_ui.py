"""Two tiny runs that differ in one hyperparameter, side by side on MLflow's compare-runs page,
read from the page in headless Chromium (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port, run, start_mlflow_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# CI installs Debian's chromium and Playwright; elsewhere the test needs them too.
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="needs Debian's chromium (apt-get install chromium) and playwright")
# Every tiny benchmark with a local score (VQAv2 and VizWiz are scored by EvalAI: NaN, not logged).
BENCHMARKS = ["gqa", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn", "seed_bench", "llava_bench",
              "mm_vet"]


# The params and metrics tables are virtualised grids that render only the visible rows:
# scroll each one through and collect the text of every row.
READ_ALL_ROWS = """async () => {
  const out = [document.body.innerText];
  for (const grid of document.querySelectorAll('.ReactVirtualized__Grid')) {
    const step = Math.max(50, grid.clientHeight / 2);
    for (let y = 0; y <= grid.scrollHeight + step; y += step) {
      grid.scrollTop = y;
      await new Promise(r => setTimeout(r, 60));
      out.push(grid.innerText);
    }
  }
  return out.join('\\n');
}"""


def _variant(tiny_local: Path, dest: Path) -> Path:
    """The tiny run again with another stage-2 learning rate (stage 2, evals and report rerun)."""
    shutil.copytree(tiny_local, dest, ignore=shutil.ignore_patterns("checkpoints", "mirror"))
    run(["snakemake", "--cores", "2", "--forcerun", "finetune", "--config", f"results={dest}",
         "overrides=finetune.learning_rate=1e-3"], timeout=1500)
    # --forcerun retrained stage 2 from its first step (tests/test_train_resume.py covers a forced
    # rerun with the same config, whose finished checkpoint must not be resumed either)
    before = json.loads((tiny_local / "tiny" / "finetune" / "metrics.json").read_text())
    after = json.loads((dest / "tiny" / "finetune" / "metrics.json").read_text())
    assert after["train/resumed"] == 0 and after["train/steps"] == before["train/steps"] > 0
    assert after["train/samples_per_second"] > 0 and after["loss_history"] != before["loss_history"]
    return dest


def test_compare_page_shows_the_differing_param_and_every_benchmark(tmp_path, tiny_local):
    from playwright.sync_api import sync_playwright

    results = _variant(tiny_local, tmp_path / "results")
    port = free_port()
    server = start_mlflow_server(f"sqlite:///{results / 'mlflow.db'}", port, tmp_path / "artifacts")
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"http://127.0.0.1:{port}")
        exp = client.get_experiment_by_name("llava-core")
        parents = [r for r in client.search_runs([exp.experiment_id])
                   if r.data.tags.get("llava.role") == "parent" and r.data.tags["llava.experiment"] == "tiny"]
        assert sorted(r.data.params["finetune.learning_rate"] for r in parents) == ["0.001", "0.003"]
        # Named from what differs from the preset, with the overrides as the description.
        names = {r.data.params["finetune.learning_rate"]: r.info.run_name for r in parents}
        assert names == {"0.003": "tiny", "0.001": "tiny finetune.learning_rate=0.001"}, names
        variant = next(r for r in parents if r.info.run_name != "tiny")
        assert "- `finetune.learning_rate=1e-3`" in variant.data.tags["mlflow.note.content"]
        for r in parents:
            assert all(f"eval/{b}/score" in r.data.metrics for b in BENCHMARKS)
        ids = json.dumps([r.info.run_id for r in parents])
        url = (f"http://127.0.0.1:{port}/#/compare-runs?runs={urllib.parse.quote(ids)}"
               f"&experiments={urllib.parse.quote(json.dumps([exp.experiment_id]))}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1500, "height": 2200})
            # CI has no internet: a request to any other host (fonts, telemetry) could hang the page,
            # so only the local server is reachable, and the test waits for content, not for idle.
            local = f"http://127.0.0.1:{port}/"
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local)
                       else route.abort())
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.get_by_text("finetune.learning_rate").first.wait_for(timeout=120_000)
            page.get_by_text("eval/gqa/score").first.wait_for(timeout=60_000)
            page.get_by_text("Show diff only").first.click()  # the parameters that differ, on top
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
            text = page.evaluate(READ_ALL_ROWS)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "finetune.learning_rate" in text and "0.003" in text and "0.001" in text
    for b in BENCHMARKS:
        assert f"eval/{b}/score" in text
    # The compare page's "Run Name" row names each column's run: the two variants are told apart.
    names_row = re.search(r"Run Name:\s*(tiny finetune\.learning_rate=0\.001\s+tiny|tiny\s+tiny finetune\."
                          r"learning_rate=0\.001)\s", text)
    assert names_row, text[:3000]
    assert (tmp_path / "compare.png").stat().st_size > 10_000
    if os.environ.get("LLAVA_SCREENSHOT_DIR"):  # how docs/images/mlflow-compare.png is made
        shutil.copy(tmp_path / "compare.png", Path(os.environ["LLAVA_SCREENSHOT_DIR"]) / "mlflow-compare.png")
