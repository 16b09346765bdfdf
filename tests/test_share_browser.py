"""An exported run page opened from disk in headless Chromium with the network off (the context offline, and every
request but the file itself aborted and recorded): it plays the run, tokens appearing step by step, to its final
text and stats, runs no script of the run's text, and asks for nothing. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROMPTS, serving_app
from recorded import autoregressive_of, hostile_run, hostile_steps, store

sync_api = pytest.importorskip("playwright.sync_api")

from playground.share.page import export_html  # noqa: E402
from playground.storage.recorder import Recorder  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def offline(browser, request):
    """open(path) -> the page showing that file, offline; asked: every URL it requested, dialogs: every alert."""
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    asked, pages = [], []

    def route(r):
        asked.append(r.request.url)
        r.continue_() if r.request.url.startswith("file://") else r.abort()

    context.route("**/*", route)

    def open_page(path: Path):
        page = context.new_page()
        page.dialogs, page.errors = [], []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready=yes]")
        pages.append(page)
        return page

    open_page.asked = asked
    yield open_page
    ARTIFACTS.mkdir(exist_ok=True)
    for i, page in enumerate(pages):
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}_{i}.png"), full_page=True)
    context.close()


def chips(page):
    return page.locator("#pg-chips .pg-chip[data-step]")


def test_an_exported_run_plays_offline(llama_pair, db, run_engine, offline, tmp_path):
    started, steps, finished = run_engine(prompt=PROMPTS[1], model=llama_pair.target, draft=llama_pair.draft,
                                          method="speculative", max_new_tokens=24, params={"gamma": 3})
    (run_id,) = store(db, [started, *steps, finished])
    path = export_html(Recorder(db, create=False), run_id, tmp_path / "run.html")
    page = offline(path)
    sync_api.expect(chips(page)).to_have_count(24)  # it opens on the whole run
    sync_api.expect(page.locator("#pg-at")).to_have_text(f"step {len(steps)} of {len(steps)}")
    page.click("#pg-first")
    sync_api.expect(chips(page)).to_have_count(0)
    page.select_option("#pg-pace", "0.3")
    page.click("#pg-play")
    seen = set()
    while page.locator("body").get_attribute("data-playing") == "yes" or not seen:
        seen.add(chips(page).count())
        page.wait_for_timeout(100)
    seen.add(chips(page).count())
    assert len(seen - {0, 24}) >= 3, f"tokens did not appear step by step: {sorted(seen)}"
    sync_api.expect(chips(page)).to_have_count(24)
    shown = "".join(page.locator("#pg-chips .pg-panel .pg-chip").all_text_contents())  # continuations too
    assert shown.replace("↵", "\n").replace("∅", "") == "".join(t for s in steps for t in s.texts)
    sync_api.expect(page.locator('#pg-stats [data-stat=new_tokens] b')).to_have_text("24")
    sync_api.expect(page.locator('#pg-stats [data-stat=target_forwards] b')).to_have_text(
        str(finished.stats.target_forwards))
    for chart in ("accepted", "progress", "drafts", "theory"):  # drawn by the inlined Plotly.js
        assert page.locator(f"#pg-{chart} .main-svg").count() >= 1, chart
    page.click("#pg-back")
    sync_api.expect(page.locator("#pg-at")).to_have_text(f"step {len(steps) - 1} of {len(steps)}")
    assert page.errors == [] and page.dialogs == []
    assert offline.asked == [path.as_uri()], f"the page asked for more than itself: {offline.asked}"


def test_hostile_text_in_an_exported_page_runs_nothing(db, offline, tmp_path):
    events = hostile_run(hostile_steps())
    run_id, _ = store(db, events, autoregressive_of(events))
    path = export_html(Recorder(db, create=False), run_id, tmp_path / "hostile.html")
    page = offline(path)
    page.click("#pg-first")
    page.select_option("#pg-pace", "0.3")
    page.click("#pg-play")
    page.wait_for_selector("body[data-playing=no]")
    sync_api.expect(page.locator("#pg-baseline [data-verdict=identical]")).to_be_visible()
    text = page.locator("#pg-chips").inner_text()
    assert "</script><script>alert('token')</script>" in text and "<img src=x onerror=alert('img')>" in text
    assert "<script>alert('model')</script>" in page.locator("#pg-status").inner_text()
    assert page.locator("main script, main img, main svg[onload]").count() == 0
    assert page.dialogs == [] and page.errors == []
    assert offline.asked == [path.as_uri()]


@pytest.fixture(scope="module")
def stored_app(tmp_path_factory):
    """(url, run id) of the app serving a database that holds a hostile run and its autoregressive reference."""
    db = tmp_path_factory.mktemp("app") / "runs.db"
    events = hostile_run(hostile_steps())
    run_id, _ = store(db, events, autoregressive_of(events))
    with serving_app(db) as (url, _):
        yield url, run_id


def test_history_saves_the_run_as_the_same_page(browser, stored_app, offline, tmp_path):
    url, run_id = stored_app
    app = browser.new_page(viewport={"width": 1400, "height": 1000})
    app.goto(url)
    app.get_by_role("tab", name="History").click()
    sync_api.expect(app.locator("#save-html-btn")).to_be_disabled()
    app.locator("#runs-table [role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
    app.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")
    app.click("#save-html-btn")
    link = app.locator("#saved-html a[download]").first
    sync_api.expect(link).to_be_visible(timeout=60_000)
    with app.expect_download() as download:
        link.click()
    saved = tmp_path / "saved.html"
    download.value.save_as(saved)
    app.screenshot(path=str(ARTIFACTS / "history_saved_html.png"), full_page=True)
    app.close()
    assert download.value.suggested_filename == f"decoding-playground-run-{run_id}.html"
    page = offline(saved)  # the page export --html writes, played offline
    sync_api.expect(chips(page)).to_have_count(18)
    sync_api.expect(page.locator("#pg-baseline [data-verdict=identical]")).to_be_visible()
    assert page.dialogs == [] and page.errors == [] and offline.asked == [saved.as_uri()]
