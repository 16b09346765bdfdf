"""Hosted mode in the browser (issue 25): two visitors, each in their own browser, on an app started public.

The first writes a secret in a prompt; the second's History neither lists nor offers it, until the first publishes
the run to the gallery. A reload keeps a visitor's History. A request over a hosted limit is refused in one line.
"""

from __future__ import annotations

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from conftest import serving_app  # noqa: E402
from test_browser import ARTIFACTS, finish_run, set_value, start_run  # noqa: E402

from playground.models.loading import shipped_models  # noqa: E402

pytestmark = pytest.mark.browser

SECRET = "# SECRET api_key = 'sk-visitor-A-12345'\n"


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    """The app's URL, started in hosted mode (as on a Space) with a fresh database."""
    with serving_app(tmp_path_factory.mktemp("public") / "runs.db", {"SPACE_ID": "someone/playground"}) as (url, _):
        yield url


def visitor(browser, url: str):
    """A new visitor: a browser context of its own (its own local storage), on the app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#generate-btn")
    return context, page


def history(page) -> str:
    """The History tab's text once its tables are filled: what this visitor is shown."""
    page.get_by_role("tab", name="History").click()
    page.click("#refresh-btn")
    page.wait_for_timeout(1500)
    return page.locator("#history-private").inner_text() + page.locator("#runs-table").inner_text() + \
        page.locator("#gallery-table").inner_text()


def test_a_visitors_run_is_private_until_published(browser, public_app):
    first_context, first = visitor(browser, public_app)
    second_context, second = visitor(browser, public_app)
    try:
        start_run(first, SECRET, "autoregressive", max_new=8)
        status, run_id = finish_run(first)
        assert status == "finished"
        first.reload()  # the same browser after a reload: still the same visitor
        first.wait_for_selector("#generate-btn")
        assert "sk-visitor-A-12345" in history(first)

        seen = history(second)
        assert "only you see them" in seen and "sk-visitor-A" not in seen
        second.locator("#run-pick input").click()
        assert second.get_by_role("option").filter(has_text="SECRET").count() == 0
        second.keyboard.press("Escape")
        second.screenshot(path=str(ARTIFACTS / "hosted_second_visitor_before.png"), full_page=True)

        first.locator("#runs-table [role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
        first.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")
        first.click("#publish-btn")
        sync_api.expect(first.locator(".toast-body").filter(has_text="is in the gallery")).to_be_visible()

        history(second)
        gallery = second.locator("#gallery-table")
        sync_api.expect(gallery).to_contain_text("sk-visitor-A-12345")
        assert "sk-visitor-A" not in second.locator("#runs-table").inner_text()  # the gallery's, not theirs
        gallery.locator("[role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
        second.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")
        assert "sk-visitor-A-12345" in second.locator("#replay-chips").inner_text()
        second.screenshot(path=str(ARTIFACTS / "hosted_second_visitor_gallery.png"), full_page=True)
    finally:
        first_context.close()
        second_context.close()


def test_hosted_limits_and_models_are_refused_in_one_line(browser, public_app):
    context, page = visitor(browser, public_app)
    try:
        set_value(page, "#model input", "/etc/passwd")
        page.click("#generate-btn")
        error = page.wait_for_selector("#live-status .pg-error")
        assert error.inner_text().strip() == (
            "Cannot run: cannot load model '/etc/passwd': this playground is public (hosted mode) and loads only the "
            f"shipped models ({', '.join(shipped_models())}) and the allowed Hub models (none)")
        assert page.locator("#max-new input[type=range]").get_attribute("max") == "256"
        page.get_by_role("tab", name="Diffusion").click()
        sync_api.expect(page.locator("#dlm-thresholds textarea")).to_have_value("0.5, 0.9, 0.99")  # within the limit
        set_value(page, "#dlm-thresholds textarea", "0.5, 0.6, 0.7, 0.8, 0.9, 0.95")
        page.click("#dlm-btn")
        verdict = page.wait_for_selector("#dlm-verdict .pg-error")
        assert verdict.inner_text().strip() == ("Cannot run: curve thresholds 6 is over the hosted limit of 3 (this "
                                                "playground is public: each request is kept small)")
        page.screenshot(path=str(ARTIFACTS / "hosted_limit_refused.png"), full_page=True)
    finally:
        context.close()
