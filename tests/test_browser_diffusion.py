"""The Diffusion tab in headless Chromium: its default run, where parallel decoding pays, and a run of one's own
with the one-click prompt where it breaks (the app served as in tests/test_browser.py, a database of its own)."""

from __future__ import annotations

import json
import re

import pytest
from test_browser import ROOT, RUN_TIMEOUT_MS, app, page, set_value, shown, snap  # noqa: F401 (fixtures)

sync_api = pytest.importorskip("playwright.sync_api")

VERDICT = ("document.querySelector('#dlm-curve') && !document.querySelector('#dlm-verdict').innerText.includes("
           "'Running') && document.querySelector('#dlm-verdict [data-verdict=identical], "
           "#dlm-verdict [data-verdict=differ]')")


def test_the_default_run_shows_parallel_decoding_paying(page, app):  # noqa: F811 (the fixtures)
    """Nothing changed, Run: at least 2x fewer forwards than one token per forward, at least 90% agreement, and the
    verdict says so in words (the wall-time claim is measured in docs/BENCHMARKS.md, not timed here). The models had
    been warmed up before the app served (its log says so)."""
    assert "warmed up" in app[1].with_suffix(".log").read_text()
    page.get_by_role("tab", name="Diffusion").click()
    assert "argparse" in page.locator("#dlm-prompt textarea").input_value()
    page.click("#dlm-btn")
    page.wait_for_function(VERDICT, timeout=RUN_TIMEOUT_MS)
    verdict = page.locator("#dlm-verdict .pg-verdict")
    slow = int(page.locator("#dlm-slow-stats [data-stat=target_forwards] b").inner_text())
    fast = int(page.locator("#dlm-fast-stats [data-stat=target_forwards] b").inner_text())
    assert slow >= 2 * fast, (slow, fast)
    assert float(verdict.get_attribute("data-fewer")) == pytest.approx(slow / fast, abs=0.01)
    assert float(verdict.get_attribute("data-agreement")) >= 0.9
    text = verdict.inner_text()
    assert re.search(rf"{slow} forwards slow vs {fast} fast: {slow / fast:.2f}x fewer, [\d.]+x the speed in wall "
                     r"time", text), text
    shown(page, "#dlm-curve svg.main-svg")
    for key in ("slow", "fast"):
        shown(page, f"#dlm-{key}-canvas .pg-canvas-plot .main-svg")
    snap(page, "diffusion_default_run")


def test_diffusion_tab_shows_slow_and_fast_side_by_side(page):
    page.get_by_role("tab", name="Diffusion").click()
    assert "Fast-dLLM" in page.locator("#dlm-strategy-help").inner_text()  # each strategy told in one line
    page.click("#dlm-dependent")  # one click: a prompt where parallel decoding breaks
    dependent = json.loads((ROOT / "assets/prompts/dependent.jsonl").read_text().splitlines()[0])["prompt"]
    sync_api.expect(page.locator("#dlm-prompt textarea")).to_have_value(dependent)
    set_value(page, "#dlm-prompt textarea", "def add(a, b):\n")
    set_value(page, "#dlm-max-new input[type=number]", 8)
    set_value(page, "#dlm-thresholds textarea, #dlm-thresholds input", "0.5, 0.9")
    page.click("#dlm-btn")
    page.wait_for_function(VERDICT, timeout=RUN_TIMEOUT_MS)
    for key in ("slow", "fast"):
        assert int(page.locator(f"#dlm-{key}-stats [data-stat=target_forwards] b").inner_text()) > 0
    for key, cache in (("slow", "prefix"), ("fast", "prefix")):  # one cache on both sides unless changed
        assert page.locator(f"#dlm-{key}-stats [data-stat=cache] b").inner_text() == cache
        assert page.locator(f"#dlm-{key}-stats [data-stat=agreement] b").inner_text().endswith("%")
        assert page.locator(f"#dlm-{key}-text .pg-chip.pg-committed").count() > 0
        shown(page, f"#dlm-{key}-canvas .pg-canvas-plot .main-svg")
    assert page.locator("#dlm-slow-stats [data-stat=agreement] b").inner_text() == "100%"
    shown(page, "#dlm-curve svg.main-svg")
    assert "Speed vs quality" in page.locator("#dlm-curve").inner_text()
    snap(page, "diffusion_side_by_side")
