"""Browser tests: the real app in a subprocess, driven by Playwright with the system Chromium.

Models: the shipped tiny-code / tiny-code-draft, or PLAYGROUND_TEST_MODEL / PLAYGROUND_TEST_DRAFT (a name or a
folder, typed into the model dropdowns). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import serving_app

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
MODEL = os.environ.get("PLAYGROUND_TEST_MODEL", "tiny-code")
DRAFT = os.environ.get("PLAYGROUND_TEST_DRAFT", "tiny-code-draft")
RUN_TIMEOUT_MS = 90_000
STATUS = "#live-status [data-status]"
def context_length(name: str) -> int:
    from playground.models.loading import resolve
    config = Path(resolve(name)) / "config.json"
    cfg = json.loads(config.read_text()) if config.is_file() else {}
    return cfg.get("max_position_embeddings") or cfg.get("n_positions") or 2048


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, db path) of the app, started on a free port with a fresh database."""
    with serving_app(tmp_path_factory.mktemp("app") / "runs.db") as served:
        yield served


@pytest.fixture
def page(browser, app, request):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.dialogs = []  # any alert() is a failed escape
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(app[0])
    page.wait_for_selector("#generate-btn")
    yield page
    snap(page, request.node.name)
    page.close()


def snap(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def set_value(page, selector: str, value) -> None:
    """Type into a textbox, number, slider box or custom-value dropdown, and commit it."""
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Enter" if "textarea" not in selector else "Tab")


def choose(page, elem_id: str, option: str) -> None:
    """Pick an option of a dropdown by clicking it."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    sync_api.expect(page.locator(f"#{elem_id} input")).to_have_value(option)


def start_run(page, prompt: str, method: str, max_new: int, temperature: float = 0.0,
              choices: dict[str, str] | None = None) -> None:
    """Fill the Generate tab and click Generate; `choices`: method dropdowns to pick, by parameter name."""
    set_value(page, "#prompt textarea", prompt)
    set_value(page, "#model input", MODEL)
    choose(page, "method", method)
    for name, option in (choices or {}).items():
        choose(page, f"param-{name}", option)
    if method in ("speculative", "tree_speculative"):
        set_value(page, "#draft input", DRAFT)
        sync_api.expect(page.locator("#draft input")).to_have_value(DRAFT)
    sync_api.expect(page.locator("#model input")).to_have_value(MODEL)
    set_value(page, "#max-new input[type=number]", max_new)
    set_value(page, "#temperature input[type=number]", temperature)
    page.click("#generate-btn")


def finish_run(page) -> tuple[str, int]:
    """Wait for the live run to end; return its status and run id."""
    page.wait_for_selector("#live-status [data-status=finished], #live-status [data-status=cancelled], "
                           "#live-status [data-status=error]", timeout=RUN_TIMEOUT_MS)
    status = page.locator(STATUS).get_attribute("data-status")
    run_id = int(re.search(r"run #(\d+)", page.locator("#live-status").inner_text()).group(1))
    return status, run_id


def chips(page, panel: str = "live") -> sync_api.Locator:
    return page.locator(f"#{panel}-chips .pg-chip[data-step]")


def test_speculative_run_shows_chips_charts_and_stats(page):
    page.wait_for_selector("#live-progress svg.main-svg")
    snap(page, "start_page")
    start_run(page, "class Stack:\n    def __init__(self):\n", "speculative", max_new=64, temperature=1.0)
    status, _ = finish_run(page)
    assert status == "finished"
    new_tokens = int(page.locator("#live-stats [data-stat=new_tokens] b").inner_text())
    assert 0 < new_tokens <= 64 and chips(page).count() == new_tokens  # fewer than 64 if the model ends the text
    assert page.locator("#live-chips .pg-accepted[data-step]").count() > 0
    assert page.locator("#live-chips .pg-replacement[data-step], #live-chips .pg-bonus[data-step]").count() > 0
    assert page.locator("#live-chips .pg-chip[title*='q (draft)']").count() > 0
    for plot in ("#live-accepted", "#live-progress"):
        page.wait_for_selector(f"{plot} svg.main-svg")
        assert "target forward" in page.locator(plot).inner_text() or "step" in page.locator(plot).inner_text()
    assert page.locator("#live-stats [data-stat=acceptance_rate] b").inner_text().endswith("%")
    shown(page, "#live-drafts svg.main-svg")  # draft length per step; constant schedule: no threshold
    for view in ("#live-confidence", "#live-layers", "#live-copies"):
        hidden(page, view)
    # the latest step: its drafts and how many were accepted, or, when the token budget left room for one token
    # only, the single target forward that made it
    assert re.search(r"accepted \d+ of \d+|one target forward", page.locator("#live-step").inner_text())
    # then autoregressive decoding of the same prompt: sampled, so the texts are not compared token by token
    page.wait_for_selector("#live-baseline [data-verdict=sampled]", timeout=RUN_TIMEOUT_MS)
    # four stat cards a row; in a narrow window they wrap onto more rows instead of squeezing their labels
    tops = page.eval_on_selector_all("#live-stats .pg-stat",
                                     "cards => cards.map(c => Math.round(c.getBoundingClientRect().top))")
    assert len(set(tops)) == 2
    page.set_viewport_size({"width": 820, "height": 1000})
    page.wait_for_timeout(300)
    widths = page.eval_on_selector_all("#live-stats .pg-stat",
                                       "cards => cards.map(c => c.getBoundingClientRect().width)")
    assert len(widths) == 8 and min(widths) >= 130
    overflowing = page.eval_on_selector_all("#live-stats .pg-stat",
                                            "cards => cards.filter(c => c.scrollWidth > c.clientWidth).length")
    assert overflowing == 0
    snap(page, "stats_at_820px")
    for plot in ("#live-accepted", "#live-progress"):  # the charts below go one under the other, each readable
        assert page.locator(plot).bounding_box()["width"] >= 280
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_a_greedy_run_is_checked_against_autoregressive_and_the_theory(page, app):
    start_run(page, "import os\n\n\ndef list_python_files(folder):\n", "speculative", max_new=48)
    _, run_id = finish_run(page)
    verdict = page.wait_for_selector("#live-baseline [data-verdict=identical]", timeout=RUN_TIMEOUT_MS)
    ar_id = int(re.search(r"autoregressive run #(\d+)", verdict.inner_text()).group(1))
    from playground.storage.recorder import Recorder
    stored = {r["id"]: r for r in Recorder(app[1]).runs()}
    assert stored[ar_id]["method"] == "autoregressive" and ar_id > run_id  # recorded like any run, right after
    assert stored[ar_id]["new_tokens"] == stored[run_id]["new_tokens"] == chips(page).count()
    for card in ("speedup", "ideal", "from_costs", "costs"):
        assert page.locator(f"#live-baseline [data-stat={card}] b").inner_text()
    assert re.fullmatch(r"\d+\.\d\d×", page.locator("#live-baseline [data-stat=speedup] b").inner_text())
    shown(page, "#live-theory svg.main-svg")  # acceptance by draft position against the i.i.d. alpha
    assert "theory" in page.locator("#live-theory").inner_text()
    assert "i.i.d. theory" in page.locator("#live-progress").inner_text()
    page.locator("#live-baseline").scroll_into_view_if_needed()
    page.locator("#live-stats").screenshot(path=str(ARTIFACTS / "stats_before_baseline.png"))
    page.locator("#live-baseline").screenshot(path=str(ARTIFACTS / "baseline_panel.png"))
    page.locator("#live-theory").screenshot(path=str(ARTIFACTS / "theory_chart.png"))
    # the run's acceptance and costs, explored in the Theory tab
    run_alpha = re.search(r"α = ([\d.]+)", page.locator("#live-baseline [data-stat=ideal]").inner_text()).group(1)
    page.click("#explore-btn")
    alpha = page.locator("#th-alpha input[type=number]")
    sync_api.expect(alpha).to_be_visible()
    sync_api.expect(alpha).to_have_value(str(float(run_alpha)))
    sync_api.expect(page.locator("#th-dv input[type=number]")).to_have_value("0")
    c_card = page.locator("#live-baseline [data-stat=costs] b").inner_text()  # "c 0.24 · v 1.35"
    run_c, run_v = re.findall(r"[\d.]+", c_card)
    sync_api.expect(page.locator("#th-c input[type=number]")).to_have_value(str(float(run_c)))
    sync_api.expect(page.locator("#th-v1 input[type=number]")).to_have_value(str(float(run_v)))
    sync_api.expect(page.locator("#th-summary [data-best]")).to_be_visible()
    sync_api.expect(page.locator("#th-speedup")).to_contain_text("the run explored")  # its measured speedup, marked
    snap(page, "theory_from_run")
    page.get_by_role("tab", name="Generate").click()
    # the replay finds the comparison in the database: shown at the last step, where whole outputs compare
    open_in_history(page, run_id)
    sync_api.expect(page.locator("#replay-baseline [data-verdict=identical]")).to_contain_text(f"run #{ar_id}")
    assert page.locator("#replay-baseline [data-stat=speedup] b").inner_text() == \
        page.locator("#live-baseline [data-stat=speedup] b").inner_text()
    page.click("#back-btn")
    hidden(page, "#replay-baseline")
    page.get_by_role("tab", name="Generate").click()
    # unticked: no second run
    page.locator("#against-ar input").uncheck()
    start_run(page, "def area(r):\n", "prompt_lookup", max_new=16)
    page.wait_for_function(f"document.querySelector('#live-status').innerText.includes('run #{ar_id + 1}')")
    assert finish_run(page) == ("finished", ar_id + 1)
    page.wait_for_timeout(1500)
    hidden(page, "#live-baseline")
    assert max(r["id"] for r in Recorder(app[1]).runs()) == ar_id + 1


def test_a_run_is_timed_undrawn_then_played_back_at_its_pace(page):
    """Nothing but a line of progress is drawn while the run and its autoregressive reference are timed; then the
    steps play back, and only then do all of them show."""
    status = page.locator("#live-status")
    start_run(page, "class Stack:\n    def __init__(self):\n", "speculative", max_new=300)
    sync_api.expect(status).to_contain_text("decoding:", timeout=RUN_TIMEOUT_MS)
    sync_api.expect(status).to_contain_text("Drawn once it is done")
    assert chips(page).count() == 0  # a fresh page: the run is not drawn while it is timed
    sync_api.expect(status).to_contain_text("now autoregressive decoding, to compare", timeout=RUN_TIMEOUT_MS)
    assert chips(page).count() == 0
    sync_api.expect(status).to_contain_text("playing back at the pace it ran: step", timeout=RUN_TIMEOUT_MS)
    shown_then = chips(page).count()
    status_now, _ = finish_run(page)
    assert status_now == "finished"
    total = int(page.locator("#live-stats [data-stat=new_tokens] b").inner_text())
    assert 0 < shown_then < total == chips(page).count()
    page.wait_for_selector("#live-baseline [data-verdict=identical]", timeout=RUN_TIMEOUT_MS)


def test_stop_cancels_a_long_run(page, app):
    max_new = min(2000, context_length(MODEL) - 64)
    start_run(page, "def long_function():\n", "autoregressive", max_new=max_new)
    page.click("#stop-btn")  # enabled once the run is armed: it stops it whether it is loading, queued or running
    status, run_id = finish_run(page)
    assert status == "cancelled"
    assert chips(page).count() < max_new
    assert page.locator("#live-chips .pg-target[data-step]").count() == chips(page).count()
    from playground.storage.recorder import Recorder
    stored = {r["id"]: r["status"] for r in Recorder(app[1]).runs()}
    assert stored[run_id] == "cancelled"


def test_history_replays_a_run_step_by_step(page):
    start_run(page, "def greet(name):\n", "speculative", max_new=40)
    _, run_id = finish_run(page)
    total = chips(page).count()
    page.get_by_role("tab", name="History").click()
    page.locator("#runs-table [role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
    page.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")
    assert chips(page, "replay").count() == total  # a picked run opens at its last step
    assert page.locator("#runs-table").get_by_text("def greet(name):", exact=True).count() >= 1  # one line, no \n
    sync_api.expect(page.locator("#run-pick input")).to_have_value(
        f"#{run_id} · finished · speculative · def greet(name):")
    page.click("#first-btn")
    page.wait_for_function("document.querySelector('#replay-status').innerText.includes('step 0 of')")
    assert chips(page, "replay").count() == 0
    page.click("#step-btn")
    page.wait_for_function("document.querySelector('#replay-status').innerText.includes('step 1 of')")
    assert chips(page, "replay").count() >= 1
    set_value(page, "#position input[type=number]", 3)
    page.wait_for_function("document.querySelector('#replay-status').innerText.includes('step 3 of')")
    page.click("#play-btn")
    page.wait_for_function(f"document.querySelectorAll('#replay-chips .pg-chip[data-step]').length == {total}",
                           timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector("#replay-accepted svg.main-svg")
    assert page.locator("#replay-stats [data-stat=new_tokens] b").inner_text() == str(total)


def test_bad_input_shows_an_error_and_the_app_keeps_working(page):
    start_run(page, "", "autoregressive", max_new=8)
    error = page.wait_for_selector("#live-status .pg-error")
    assert "prompt is empty" in error.inner_text()
    snap(page, "error_empty_prompt")
    set_value(page, "#prompt textarea", "x = 1\n")
    set_value(page, "#model input", "/no/such/model")
    page.click("#generate-btn")
    page.wait_for_function("document.querySelector('#live-status').innerText.includes('cannot load model')")
    # a number typed out of its range is refused by name, and Generate comes back for the corrected one
    set_value(page, "#model input", "tiny-code")
    set_value(page, "#top-p input[type=number]", 5)
    page.click("#generate-btn")
    toast = page.locator(".toast-body").filter(has_text="top-p: 5 is out of range")
    sync_api.expect(toast).to_contain_text("from 0 to 1")
    snap(page, "error_top_p_out_of_range")
    sync_api.expect(page.locator("#generate-btn")).to_be_enabled()
    sync_api.expect(page.locator("#stop-btn")).to_be_disabled()
    set_value(page, "#top-p input[type=number]", 1)
    start_run(page, "x = 1\n", "autoregressive", max_new=8)
    status, _ = finish_run(page)
    assert status == "finished"
    assert chips(page).count() >= 1


def test_html_in_the_prompt_is_shown_as_text(page):
    prompt = "<script>alert(1)</script><img src=x onerror=alert(2)>\n"
    start_run(page, prompt, "autoregressive", max_new=8)
    finish_run(page)
    assert "<script>alert(1)</script>" in page.locator("#live-chips .pg-prompt").inner_text()
    assert page.locator("#live-chips script, #live-chips img").count() == 0
    for view in ("#live-drafts", "#live-confidence", "#live-layers", "#live-copies"):
        hidden(page, view)  # autoregressive: nothing drafted
    assert page.dialogs == []


REPEATING = "def add(a, b):\n    return a + b\n\n\ndef add(a, b):"  # the second def's body can be copied


def shown(page, selector: str) -> None:
    sync_api.expect(page.locator(selector).first).to_be_visible(timeout=RUN_TIMEOUT_MS)


def hidden(page, selector: str) -> None:
    sync_api.expect(page.locator(selector)).to_be_hidden()


def test_method_choice_resets_shared_inputs_and_shows_schedule_inputs(page):
    gamma = page.locator("#param-gamma input[type=number]")
    choose(page, "method", "prompt_lookup")
    sync_api.expect(gamma).to_have_value("8")  # prompt_lookup's default, not speculative's 4
    hidden(page, "#param-min_confidence")
    choose(page, "method", "speculative")
    sync_api.expect(gamma).to_have_value("4")
    hidden(page, "#param-min_confidence")  # the constant schedule reads none of them
    choose(page, "param-schedule", "confidence")
    shown(page, "#param-min_confidence")
    hidden(page, "#param-target_acceptance")
    hidden(page, "#param-max_reject")
    choose(page, "param-schedule", "adaptive")
    shown(page, "#param-target_acceptance")
    choose(page, "method", "self_speculative")
    sync_api.expect(gamma).to_have_value("8")
    sync_api.expect(page.locator("#param-schedule input")).to_have_value("adaptive")
    shown(page, "#param-min_confidence")
    hidden(page, "#param-max_reject")


def test_max_new_tokens_ends_where_the_model_context_does(page):
    box = page.locator("#max-new input[type=number]")
    sync_api.expect(box).to_have_attribute("max", "1023")  # tiny-code's 1,024 positions, the prompt's included
    set_value(page, "#max-new input[type=number]", 200)
    set_value(page, "#model input", "tiny-numbers-ar")  # 64 decoder positions, the start token first
    sync_api.expect(box).to_have_value("63")
    sync_api.expect(box).to_have_attribute("max", "63")
    assert "at most 63 with tiny-numbers-ar" in page.locator("#max-new").inner_text()
    set_value(page, "#model input", MODEL)  # room again: the 200 asked for comes back
    sync_api.expect(box).to_have_value("200")
    sync_api.expect(box).to_have_attribute("max", "1023")


def test_greedy_only_methods_lock_the_sampling_inputs_and_others_unlock_them(page):
    temperature = page.locator("#temperature input[type=number]")
    set_value(page, "#temperature input[type=number]", 0.7)
    choose(page, "method", "dag")
    sync_api.expect(temperature).to_have_value("0")
    sync_api.expect(temperature).to_be_disabled()
    sync_api.expect(page.locator("#seed input")).to_be_disabled()
    assert "dag decodes greedily" in page.locator("#temperature").inner_text()
    hidden(page, "#against-ar")  # not lossless: nothing to compare token by token
    choose(page, "method", "diffusion")  # threshold by default: it samples too
    sync_api.expect(temperature).to_be_enabled()
    choose(page, "param-strategy", "freedave")
    sync_api.expect(temperature).to_be_disabled()
    assert "with strategy freedave" in page.locator("#temperature").inner_text()
    choose(page, "param-strategy", "threshold")
    sync_api.expect(temperature).to_be_enabled()
    choose(page, "method", "speculative")
    sync_api.expect(temperature).to_be_enabled()
    shown(page, "#against-ar")
    choose(page, "method", "autoregressive")
    hidden(page, "#against-ar")  # it is the reference


def test_self_speculative_shows_the_layer_stack_and_confidence_vs_threshold(page):
    start_run(page, "def is_prime(n):\n    if n < 2:\n", "self_speculative", max_new=24)
    status, _ = finish_run(page)
    assert status == "finished"
    shown(page, "#live-layers .pg-layers")
    skipped = page.locator("#live-layers .pg-sub.pg-skipped")
    assert skipped.count() > 0
    assert skipped.first.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    run = page.locator("#live-layers .pg-sub:not(.pg-skipped)")
    assert run.count() > 0 and run.first.evaluate("e => getComputedStyle(e).textDecorationLine") == "none"
    caption = re.search(r"(\d+) of (\d+) sub-layers skipped while drafting",
                        page.locator("#live-layers").inner_text())
    assert caption and int(caption.group(1)) == skipped.count()
    assert int(caption.group(2)) == page.locator("#live-layers .pg-sub").count()
    for plot, title in (("#live-confidence", "Draft confidence vs threshold"), ("#live-drafts", "Draft length")):
        shown(page, f"{plot} svg.main-svg")
        assert title in page.locator(plot).inner_text()
    assert "threshold" in page.locator("#live-confidence").inner_text()
    hidden(page, "#live-copies")  # nothing is copied


def test_prompt_lookup_hover_lights_up_the_source_span(page):
    start_run(page, REPEATING, "prompt_lookup", max_new=12)
    status, run_id = finish_run(page)
    assert status == "finished"
    shown(page, "#live-drafts svg.main-svg")
    hidden(page, "#live-layers")
    hidden(page, "#live-confidence")
    check_copy_hover(page, "live")
    page.get_by_role("tab", name="History").click()  # the replay draws the same view, hover included
    page.locator("#runs-table [role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
    page.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")
    check_copy_hover(page, "replay")
    hidden(page, "#replay-layers")


def check_copy_hover(page, panel: str) -> None:
    shown(page, f"#{panel}-copies .pg-copy")
    lit = page.locator(f"#{panel}-copies .pg-ctx.pg-src-span")
    assert lit.count() == 0
    chip = page.locator(f"#{panel}-copies .pg-row [data-src]").last  # the oldest step's last copied token
    src = int(chip.get_attribute("data-src"))
    start, end = map(int, chip.get_attribute("data-span").split())
    chip.hover()
    page.wait_for_function(f"document.querySelectorAll('#{panel}-copies .pg-src-span').length > 0")
    ranges = [(int(c.get_attribute("data-a")), int(c.get_attribute("data-b"))) for c in lit.all()]
    assert all(a < end and b > start for a, b in ranges)  # every lit chip is in the span ...
    covered = {p for a, b in ranges for p in range(a, b)}
    assert set(range(start, end)) <= covered  # ... and the whole span is lit
    tok = page.locator(f"#{panel}-copies .pg-ctx.pg-src-tok").first
    assert int(tok.get_attribute("data-a")) <= src < int(tok.get_attribute("data-b"))
    assert lit.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(253, 230, 138)"
    snap(page, f"prompt_lookup_hover_{panel}")
    page.mouse.move(5, 5)
    page.wait_for_function(f"document.querySelectorAll('#{panel}-copies .pg-src-span').length == 0")


# --- tree methods: the draft tree view (Plotly.js with frames, in a gr.HTML) and its two charts

TREE_PROMPT = "def is_prime(n):\n    if n < 2:\n"


def tree_trace(page, view: str, uid: str) -> sync_api.Locator:
    """The drawn Plotly trace `uid` of the tree figure in `view` (traces without points are not drawn)."""
    return page.locator(f"{view} .scatterlayer .trace{uid}")


def tree_drawn(page, view: str) -> dict:
    """What the tree figure shows now: its slider label, title, and the node markers drawn per state."""
    return page.evaluate(f"""() => {{
        const plot = document.querySelector('{view} .pg-tree-plot');
        const count = (uid) => plot.querySelectorAll(`.scatterlayer .trace${{uid}} path.point`).length;
        return {{label: plot.querySelector('.slider-group > text.slider-label').textContent,
                 title: plot.querySelector('.gtitle').textContent,
                 nodes: ['drafted', 'new', 'pruned', 'unreached', 'rejected', 'accepted'].map(count),
                 accepted: count('accepted')}};
    }}""")


def test_tree_run_shows_the_tree_view_and_its_charts(page):
    start_run(page, TREE_PROMPT, "tree_speculative", max_new=24)
    status, _ = finish_run(page)
    assert status == "finished"
    shown(page, "#live-tree .pg-tree-plot .main-svg")
    assert page.evaluate("typeof window.Plotly.animate") == "function"  # served from the plotly package, no CDN
    drawn = tree_drawn(page, "#live-tree")
    assert drawn["label"].endswith("verified")  # it opens at the newest step, verified
    accepted = int(re.search(r"accepted (\d+)", drawn["title"]).group(1))
    assert drawn["accepted"] == accepted and sum(drawn["nodes"]) > accepted
    assert page.locator("#live-tree .pg-legend").inner_text().count("accepted path") == 1
    for plot, title in (("#live-tree-size", "Tree size vs accepted length"),
                        ("#live-depth-acceptance", "Acceptance by depth"),
                        ("#live-theory", "Acceptance by sibling rank")):  # Sequoia's positional acceptance
        shown(page, f"{plot} svg.main-svg")
        assert title in page.locator(plot).inner_text()
    assert "positional theory" in page.locator("#live-progress").inner_text()
    page.locator("#live-tree").scroll_into_view_if_needed()
    snap(page, "tree_live")
    assert page.dialogs == []


def test_eagle_draws_its_head_beside_the_target_layers_and_matches_autoregressive(page):
    from playground.models.loading import DEFAULT_HEADS, shipped_models
    if DEFAULT_HEADS.get(MODEL) not in shipped_models():
        pytest.skip(f"no shipped EAGLE head for {MODEL}")
    page.locator("#advanced").get_by_text("Advanced", exact=True).click()  # closed at first
    choose(page, "runtime", "transformers")
    start_run(page, TREE_PROMPT, "eagle", max_new=24, choices={"tree": "dynamic"})  # the default is a chain
    assert finish_run(page)[0] == "finished"
    sync_api.expect(page.locator("#draft input")).to_have_value(DEFAULT_HEADS[MODEL])  # the head, picked for eagle
    verdict = page.wait_for_selector("#live-baseline [data-verdict=identical]", timeout=RUN_TIMEOUT_MS)
    assert "Identical to the autoregressive run" in verdict.inner_text()
    assert "runtime=transformers" in page.locator("#live-status").inner_text()
    head = page.locator("#live-layers .pg-eagle")
    shown(page, "#live-layers .pg-eagle [data-role=head]")
    layers = int(head.get_attribute("data-layers"))
    assert page.locator("#live-layers .pg-layer.pg-tapped").get_attribute("data-layer") == str(layers - 1)
    assert "EAGLE head" in head.inner_text() and "fc" in head.inner_text()
    shown(page, "#live-tree .pg-tree-plot .main-svg")  # EAGLE-2's dynamic tree, and its acceptance by depth
    assert "Acceptance by depth" in page.locator("#live-depth-acceptance").inner_text()
    head.scroll_into_view_if_needed()
    head.screenshot(path=str(ARTIFACTS / "eagle_head.png"))


def record_tree_run(db) -> tuple[int, list]:
    """A tree_speculative run stored straight into the app's database; its id and steps."""
    from playground.engine import Request, generate
    from playground.events import RunStarted, Step
    from playground.storage.recorder import Recorder
    events = list(Recorder(db).record(generate(Request(prompt=TREE_PROMPT, model=MODEL, draft=DRAFT,
                                                       method="tree_speculative", max_new_tokens=32))))
    return next(e.run_id for e in events if isinstance(e, RunStarted)), [e for e in events if isinstance(e, Step)]


def open_in_history(page, run_id: int) -> None:
    """Open the History tab, refresh its table and pick run `run_id`."""
    page.get_by_role("tab", name="History").click()
    page.click("#refresh-btn")
    page.locator("#runs-table [role=gridcell].first-column").get_by_text(str(run_id), exact=True).click()
    page.wait_for_function(f"document.querySelector('#replay-status').innerText.includes('run #{run_id}')")


def test_history_animates_the_draft_tree(page, app):
    run_id, steps = record_tree_run(app[1])
    open_in_history(page, run_id)
    shown(page, "#replay-tree .pg-tree-plot .main-svg")
    tree = page.locator("#replay-tree")
    tree.scroll_into_view_if_needed()
    tree.locator(".updatemenu-button").first.click()  # Plotly's own ▶ Play
    seen = []
    for k in range(4):  # Play at the last frame starts the run over: its first steps grow round by round
        page.wait_for_timeout(900)
        seen.append(tree_drawn(page, "#replay-tree"))
        tree.screenshot(path=str(ARTIFACTS / f"tree_play_{k}.png"))
    tree.locator(".updatemenu-button").nth(1).click()  # Pause
    labels = [d["label"] for d in seen]
    assert len(set(labels)) >= 3, labels
    assert len({sum(d["nodes"]) for d in seen}) >= 2, seen  # the drawn tree changes as it grows
    assert any("round" in label for label in labels)
    # the slider: jump to the verified tree of a step that accepted drafted tokens
    best = max((s for s in steps if s.tree), key=lambda s: s.accepted)
    assert best.accepted >= 1
    # Plotly labels only some ticks when they are crowded, but draws a tick for every frame: click that frame's
    labels = page.evaluate("document.querySelector('#replay-tree .pg-tree-plot').layout.sliders[0].steps"
                           ".map((s) => s.label)")
    tick = tree.locator(".slider-tick-rect").nth(labels.index(f"step {best.number} · verified")).bounding_box()
    rail = tree.locator(".slider-rail-rect").bounding_box()
    page.mouse.click(tick["x"] + tick["width"] / 2, rail["y"] + rail["height"] / 2)
    page.wait_for_function(f"document.querySelector('#replay-tree .gtitle').textContent.startsWith("
                           f"'Step {best.number} · verified')")  # the frame is drawn (the slider label moves first)
    drawn = tree_drawn(page, "#replay-tree")
    assert drawn["label"] == f"step {best.number} · verified"
    assert drawn["accepted"] == best.accepted
    node = tree_trace(page, "#replay-tree", "accepted").locator("path.point").first
    assert "21, 128, 61" in node.evaluate("e => getComputedStyle(e).stroke")  # the accepted path: green outline
    box = node.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # Plotly hovers on its drag layer
    page.wait_for_function("document.querySelector('#replay-tree .hoverlayer').textContent.includes('p (target)')")
    hover = page.locator("#replay-tree .hoverlayer").text_content()
    assert "q (draft) = " in hover and "p (target) = " in hover and "accepted" in hover
    tree.screenshot(path=str(ARTIFACTS / "tree_verified_hover.png"))


def test_compare_runs_chain_static_and_dynamic_side_by_side(page):
    page.get_by_role("tab", name="Compare").click()
    set_value(page, "#cmp-prompt textarea", TREE_PROMPT)
    set_value(page, "#cmp-max-new input[type=number]", 24)
    page.click("#compare-btn")
    verdict = page.wait_for_selector("#cmp-verdict [data-verdict=identical], #cmp-verdict [data-verdict=different], "
                                     "#cmp-verdict [data-verdict=failed]", timeout=3 * RUN_TIMEOUT_MS)
    assert verdict.get_attribute("data-verdict") == "identical", verdict.inner_text()
    assert "identical" in verdict.inner_text()
    assert re.search(r"Autoregressive decoding \(run #\d+\): [\d.]+ tokens/s", verdict.inner_text())
    texts = []
    for key in ("chain", "static", "dynamic"):
        shown(page, f"#cmp-{key}-stats [data-stat=tokens_per_s]")
        assert int(page.locator(f"#cmp-{key}-stats [data-stat=target_forwards] b").inner_text()) > 0
        texts.append(page.locator(f"#cmp-{key}-chips .pg-panel").inner_text())
    assert texts[0] == texts[1] == texts[2]
    assert re.search(r"[\d.]+× autoregressive$",
                     page.locator("#cmp-chain-stats [data-stat=tokens_per_s] small").inner_text())
    assert re.search(r"× autoregressive · [\d.]+× the chain",
                     page.locator("#cmp-static-stats [data-stat=tokens_per_s] small").inner_text())
    for key in ("static", "dynamic"):
        shown(page, f"#cmp-{key}-tree .pg-tree-plot .main-svg")
        active, frames = page.evaluate(f"""() => {{ const s = document.querySelector('#cmp-{key}-tree .pg-tree-plot')
            .layout.sliders[0]; return [s.active, s.steps.length]; }}""")
        assert active == frames - 1, (key, active, frames)  # the player opens at the run's end (issue 24)
    assert page.locator("#cmp-chain .pg-cmp-note").is_visible()
    snap(page, "compare")


# --- diffusion: the canvas (Plotly.js with frames, in a gr.HTML), its charts, and the Diffusion tab

DIFFUSION = "tiny-code-diffusion"


def canvas_drawn(page, view: str) -> dict:
    """What the canvas shows now: its title, slider label, and the committed and masked cells drawn."""
    return page.evaluate(f"""() => {{
        const plot = document.querySelector('{view} .pg-canvas-plot');
        const cells = (i) => plot.data[i].z.flat().filter((z) => z !== null).length;
        return {{title: plot.querySelector('.gtitle').textContent,
                 label: plot.querySelector('.slider-group > text.slider-label').textContent,
                 committed: cells(1), masked: cells(0)}};
    }}""")


def test_diffusion_run_draws_the_canvas_and_replays_it(page):
    set_value(page, "#prompt textarea", "def add(a, b):\n")
    choose(page, "method", "diffusion")  # picks the shipped diffusion model in place of tiny-code
    sync_api.expect(page.locator("#model input")).to_have_value(DIFFUSION)
    choose(page, "model", "tiny-code")
    page.click("#generate-btn")  # a causal model picked after all: the engine's clear error, no crash
    error = page.wait_for_selector("#live-status .pg-error")
    assert "needs a masked-diffusion model" in error.inner_text() and "methods that run it" in error.inner_text()
    # max new tokens first: a model change resets it to the last value typed, and a late reset (a busy machine)
    # typed over 16 with 128 when it came second
    set_value(page, "#max-new input[type=number]", 16)
    set_value(page, "#model input", DIFFUSION)
    sync_api.expect(page.locator("#model input")).to_have_value(DIFFUSION)
    sync_api.expect(page.locator("#max-new input[type=number]")).to_have_value("16")
    page.click("#generate-btn")
    status, run_id = finish_run(page)
    assert status == "finished"
    shown(page, "#live-canvas .pg-canvas-plot .main-svg")
    for view in ("#live-tree", "#live-drafts", "#live-confidence", "#live-layers", "#live-copies"):
        hidden(page, view)
    assert "Tokens vs forward passes" in page.locator("#live-progress").inner_text()
    assert canvas_drawn(page, "#live-canvas")["committed"] == 16  # it opens at the finished canvas
    open_in_history(page, run_id)
    shown(page, "#replay-canvas .pg-canvas-plot .main-svg")
    canvas = page.locator("#replay-canvas")
    canvas.scroll_into_view_if_needed()
    frames = int(canvas.locator(".pg-canvas").get_attribute("data-frames"))
    seen = []
    for k, at in enumerate(sorted({0, frames // 3, 2 * frames // 3})):  # step the slider through the run
        page.evaluate(f"""() => {{ const plot = document.querySelector('#replay-canvas .pg-canvas-plot');
            Plotly.animate(plot, [plot.layout.sliders[0].steps[{at}].args[0][0]],
                           {{mode: 'immediate', frame: {{duration: 0, redraw: true}}, transition: {{duration: 0}}}});
        }}""")
        page.wait_for_timeout(300)
        seen.append(canvas_drawn(page, "#replay-canvas"))
        canvas.screenshot(path=str(ARTIFACTS / f"diffusion_canvas_{k}.png"))
    committed = [d["committed"] for d in seen]
    assert committed == sorted(committed) and len(set(committed)) == len(seen), seen  # the canvas fills up
    assert all(d["committed"] + d["masked"] == 16 for d in seen)
    assert len({d["title"] for d in seen}) == len(seen)
    canvas.locator(".updatemenu-button").first.click()  # ▶ Play from there
    page.wait_for_function("document.querySelector('#replay-canvas .gtitle').textContent.includes('16 of 16')",
                           timeout=30_000)
    canvas.screenshot(path=str(ARTIFACTS / "diffusion_canvas_played.png"))
    assert page.dialogs == []


# --- DAG decoding: the graph (Plotly.js in a gr.HTML, pruned and clicked in the page) and the DAG tab

def numbers_or_skip() -> dict:
    """The numbers models (dat, ar, nat, drafter) by name or folder; skips while they are not trained yet."""
    from test_views_dag import NUMBERS, numbers_missing
    if numbers_missing():
        pytest.skip(numbers_missing())
    return NUMBERS


def dag_drawn(page, view: str) -> dict:
    """What the graph in `view` shows now: vertex markers and lines drawn, and what its count line says."""
    return page.evaluate(f"""() => {{
        const plot = document.querySelector('{view} .pg-dag-plot');
        const lines = plot.data.filter((t) => t.meta === 'edges' || t.meta === 'path')
                               .reduce((n, t) => n + t.x.filter((x) => x === null).length, 0);
        const count = document.querySelector('{view} .pg-dag-count').dataset;
        return {{vertices: plot.querySelectorAll('.tracevertices path.point').length, lines,
                 shown_vertices: +count.shownVertices, shown_edges: +count.shownEdges}};
    }}""")


def prune(page, view: str, name: str, value: float) -> None:
    """Move a prune slider (vertices or edges) and wait until the page took it."""
    page.locator(f"{view} input[data-prune={name}]").fill(str(value))
    page.wait_for_function(f"document.querySelector('{view} output[data-for={name}]').textContent === "
                           f"'{value:.2f}'")


def test_dag_run_draws_the_graph_prunes_it_and_shows_a_vertex(page, app):
    numbers = numbers_or_skip()
    choose(page, "method", "dag")  # a numbers method: the numbers model and a French phrase come with it
    sync_api.expect(page.locator("#model input")).to_have_value("tiny-numbers-dat")
    sync_api.expect(page.locator("#prompt textarea")).to_have_value("trois cent douze")
    hidden(page, "#param-beam")
    choose(page, "param-strategy", "beam")
    shown(page, "#param-beam")
    choose(page, "param-strategy", "viterbi")
    set_value(page, "#model input", numbers["dat"])
    sync_api.expect(page.locator("#model input")).to_have_value(numbers["dat"])
    page.click("#generate-btn")
    status, run_id = finish_run(page)
    assert status == "finished"
    shown(page, "#live-dag .pg-dag-plot .main-svg")
    for view in ("#live-tree", "#live-canvas"):
        hidden(page, view)
    from playground.storage.recorder import Recorder
    _, steps, _ = Recorder(app[1]).replay(run_id)
    step = steps[0]
    size, path = len(step.dag.top), step.dag.path
    edges = [e for e in step.dag.edges if e[0] < e[1]]
    assert dag_drawn(page, "#live-dag")["vertices"] == size
    page.locator("#live-dag").screenshot(path=str(ARTIFACTS / "dag_live.png"))

    open_in_history(page, run_id)  # the replay draws the same graph from the database
    view = "#replay-dag"
    shown(page, f"{view} .pg-dag-plot .main-svg")
    graph = page.locator(view)
    graph.scroll_into_view_if_needed()
    whole = dag_drawn(page, view)
    assert (whole["vertices"], whole["shown_vertices"], whole["shown_edges"]) == (size, size, len(edges))
    graph.screenshot(path=str(ARTIFACTS / "dag_replay.png"))
    assert size > len(path)
    prune(page, view, "vertices", 1.0)  # only the path's vertices stay, and the transitions between them
    pruned = dag_drawn(page, view)
    assert pruned["vertices"] == pruned["shown_vertices"] == len(path) < size
    assert pruned["lines"] < whole["lines"] and pruned["shown_edges"] < len(edges)
    graph.screenshot(path=str(ARTIFACTS / "dag_pruned_vertices.png"))
    prune(page, view, "vertices", 0)
    prune(page, view, "edges", 0.5)
    pruned = dag_drawn(page, view)
    assert pruned["vertices"] == size and pruned["shown_edges"] < len(edges) and pruned["lines"] < whole["lines"]
    graph.screenshot(path=str(ARTIFACTS / "dag_pruned_edges.png"))

    vertex = path[1]  # click the first vertex after <s> on the path: its details fill the box beside the plot
    box = graph.locator(".tracevertices path.point").nth(vertex).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(f"{view} .pg-dag-details[data-vertex='{vertex}']")
    details = graph.locator(".pg-dag-details").inner_text()
    assert f"Vertex {vertex}" in details and "passing probability" in details
    assert all(text in details for text in step.dag.top_texts[vertex] if text.strip())
    assert "strongest in" in details and "strongest out" in details
    assert graph.locator(".traceselected path.point").count() == 1  # the clicked vertex is ringed
    graph.screenshot(path=str(ARTIFACTS / "dag_details.png"))
    assert page.dialogs == []


def test_dag_tab_translates_four_ways_side_by_side(page):
    from playground.compare.dag import TAB_MODELS
    numbers = numbers_or_skip()
    page.get_by_role("tab", name="DAG").click()
    set_value(page, "#dag-phrase textarea", " ")  # an empty phrase: a clear message, no run
    page.click("#dag-btn")
    sync_api.expect(page.locator("#dag-verdict .pg-error")).to_contain_text("the phrase is empty")
    set_value(page, "#dag-phrase textarea", "quatre mille deux cent cinquante-trois")
    if numbers != TAB_MODELS:
        page.get_by_text("Models", exact=True).click()
        for key, name in numbers.items():
            set_value(page, f"#dag-model-{key} input", name)
            sync_api.expect(page.locator(f"#dag-model-{key} input")).to_have_value(name)
    page.click("#dag-btn")
    sync_api.expect(page.locator("#dag-verdict .pg-error")).to_have_count(0)  # the empty phrase's message goes
    verdict = page.wait_for_selector("#dag-verdict [data-verdict=identical], #dag-verdict [data-verdict=different], "
                                     "#dag-verdict [data-verdict=failed], #dag-verdict .pg-error",
                                     timeout=2 * RUN_TIMEOUT_MS)
    assert verdict.get_attribute("data-verdict") == "identical", verdict.inner_text()  # gad is lossless
    assert re.search(r"DAG [\d.]+× · GAD [\d.]+× · NAT [\d.]+×", verdict.inner_text())
    runs = set()
    for key in ("dag", "ar", "gad", "nat"):
        side = page.locator(f"#dag-{key}-side .pg-dag-side")
        assert side.get_attribute("data-status") == "finished"
        runs.add(side.get_attribute("data-run"))
        assert page.locator(f"#dag-{key}-side [data-stat=wall_s] b").inner_text().endswith(" ms")
    assert len(runs) == 4  # each recorded on its own
    assert page.locator("#dag-gad-side [data-output]").inner_text() == \
        page.locator("#dag-ar-side [data-output]").inner_text()
    shown(page, "#dag-gad-side .pg-dag-drafts .pg-step")  # gad's drafts, accepted tokens in green
    assert "drafted tokens accepted" in page.locator("#dag-gad-side").inner_text()
    shown(page, "#dag-graph .pg-dag-plot .main-svg")
    snap(page, "dag_tab")
    assert page.dialogs == []


def test_theory_tab_redraws_the_best_draft_length_as_the_sliders_move(page):
    page.get_by_role("tab", name="Theory").click()
    best = page.locator("#th-summary [data-best]")
    sync_api.expect(best).to_have_attribute("data-best", re.compile(r"^[1-9]\d*$"))  # drafting pays at the start
    start = int(best.get_attribute("data-best"))
    shown(page, "#th-tokens svg.main-svg")
    shown(page, "#th-speedup svg.main-svg")
    set_value(page, "#th-alpha input[type=number]", 0.95)  # surer drafts: longer ones pay
    page.wait_for_function(f"+document.querySelector('#th-summary [data-best]').dataset.best > {start}")
    set_value(page, "#th-c input[type=number]", 1)  # a draft as dear as the target: drafting never pays
    sync_api.expect(best).to_have_attribute("data-best", "0")
    assert "does not pay" in page.locator("#th-summary").inner_text()
    # Sequoia's best tree: one node, one level, then wider and deeper as the budget grows
    set_value(page, "#th-nodes input[type=number]", 1)
    sync_api.expect(page.locator("#th-tree-summary [data-stat=tree_tokens] small")).to_contain_text(
        "1 nodes in 1 levels")
    set_value(page, "#th-c input[type=number]", 0.2)
    set_value(page, "#th-nodes input[type=number]", 12)
    sync_api.expect(page.locator("#th-tree-summary [data-stat=tree_tokens] small")).to_contain_text("12 nodes")
    shown(page, "#th-tree svg.main-svg")
    assert page.locator("#th-tree .scatterlayer .point").count() == 12 + 1  # the nodes and the newest token
    assert "Sequoia's best tree" in page.locator("#th-tree").inner_text()
    # verification as a GPU measured it (flatter): the same tree and draft, a higher ideal speedup; then the CPU's
    speedup = page.locator("#th-tree-summary [data-stat=tree_speedup] b")
    on_cpu = float(speedup.inner_text().rstrip("×"))
    page.click("#th-gpu")
    sync_api.expect(page.locator("#th-v1 input[type=number]")).to_have_value("1.15")
    sync_api.expect(page.locator("#th-dv input[type=number]")).to_have_value("0")
    page.wait_for_function(f"parseFloat(document.querySelector('#th-tree-summary [data-stat=tree_speedup] b')"
                           f".innerText) > {on_cpu}")
    assert page.locator("#th-alpha input[type=number]").input_value() == "0.95"  # the other sliders stay
    snap(page, "theory_tab_flat_verification")
    page.click("#th-cpu")
    sync_api.expect(page.locator("#th-v1 input[type=number]")).to_have_value("1.22")
    sync_api.expect(speedup).to_have_text(f"{on_cpu:.2f}×")
    snap(page, "theory_tab")

