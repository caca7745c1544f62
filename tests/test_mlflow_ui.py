"""A 2 x 2 sweep's four variants side by side on MLflow's compare-runs page, read from the page in
headless Chromium (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path

import pytest
from conftest import FEW_BENCHMARKS, SWEEP, free_port, start_mlflow_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# CI installs Debian's chromium and Playwright; elsewhere the test needs them too.
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="needs Debian's chromium (apt-get install chromium) and playwright")
# Every tiny benchmark with a local score (VQAv2 and VizWiz are scored by EvalAI: NaN, not logged).
BENCHMARKS = list(FEW_BENCHMARKS)  # the sweep's (all scored locally)


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


def test_compare_page_shows_a_whole_sweep_with_its_axes_and_every_benchmark(tmp_path, sweep_run):
    """The four variants of a 2 x 2 sweep (stage-2 learning rate x stage-2 seed), found in the runs
    table by their sweep tag, side by side on the compare page: their names, their axes as params,
    every benchmark's score."""
    from playwright.sync_api import sync_playwright

    results, plan = sweep_run["results"], sweep_run["plan"]
    port = free_port()
    server = start_mlflow_server(f"sqlite:///{results / 'mlflow.db'}", port, tmp_path / "artifacts")
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"http://127.0.0.1:{port}")
        exp = client.get_experiment_by_name("llava-core")
        # What a researcher types in the runs table's search box finds the sweep's parents.
        parents = client.search_runs([exp.experiment_id], filter_string=f"tags.`llava.sweep` = '{SWEEP}'")
        assert sorted(r.info.run_name for r in parents) == sorted(plan["variants"])
        for r in parents:
            axes = plan["variants"][r.info.run_name]["axes"]
            assert {k: r.data.params[f"sweep.{k}"] for k in axes} == axes
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
            page.get_by_text("sweep.finetune.learning_rate").first.wait_for(timeout=120_000)
            page.get_by_text("eval/gqa/score").first.wait_for(timeout=60_000)
            page.get_by_text("Show diff only").first.click()  # the parameters that differ, on top
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
            text = page.evaluate(READ_ALL_ROWS)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    for axis in ("sweep.finetune.learning_rate", "sweep.finetune.seed"):
        assert axis in text
    assert "1e-3" in text and "2e-3" in text
    for b in BENCHMARKS:
        assert f"eval/{b}/score" in text
    # The compare page's "Run Name" row names each column's run: the four variants, told apart.
    names_row = next((line for line in text.splitlines() if line.startswith("Run Name:")), "")
    assert all(name in text for name in plan["variants"]), text[:3000]
    assert names_row or all(text.count(name) >= 1 for name in plan["variants"])
    assert (tmp_path / "compare.png").stat().st_size > 10_000
    if os.environ.get("LLAVA_SCREENSHOT_DIR"):  # how docs/images/mlflow-compare.png is made
        shutil.copy(tmp_path / "compare.png", Path(os.environ["LLAVA_SCREENSHOT_DIR"]) / "mlflow-compare.png")
