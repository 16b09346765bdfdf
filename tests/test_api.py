"""The public API (docs/API.md): the real app (app.py) driven through gradio_client by endpoint name, as a program
would: the endpoints listed are exactly the documented ones, Generate and Diffusion run without any UI event first
(issue 25: Generate's diffusion failed unless `/method_changed` was called), and the UI's internal events are not
offered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import serving_app

from playground.app.api import PUBLIC
from playground.app.method_inputs import chosen_params, first_method, method_params, opening_value, settled_draft
from playground.methods import METHODS

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "API.md"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "runs.db"
    with serving_app(db) as (url, _):
        yield Client(url, verbose=False), db


def listed(client: Client) -> dict:
    return client.view_api(return_format="dict", print_info=False)


def status_of(html: str) -> str:
    found = re.search(r'data-status="(\w+)"', html)
    return found.group(1) if found else html[:300]


def documented() -> dict[str, tuple[set[str], int]]:
    """docs/API.md: each `### /name` heading -> the parameter names in backticks that start its tables' rows, and how
    many returns its numbered list has."""
    params, returns, current = {}, {}, None
    for line in API_DOC.read_text().splitlines():
        if heading := re.match(r"### `?/(\w+)`?", line):
            current = heading.group(1)
            params[current], returns[current] = set(), 0
        elif current is not None and (row := re.match(r"\| `(\w+)` \|", line)):
            params[current].add(row.group(1))
        elif current is not None and re.match(r"\d+\. ", line):
            returns[current] += 1
    return {name: (params[name], returns[name]) for name in params}


def test_the_listed_endpoints_are_the_public_ones_each_documented_with_its_parameters(client):
    info = listed(client[0])
    names = {name.lstrip("/") for name in info["named_endpoints"]}
    assert names == set(PUBLIC) and not info["unnamed_endpoints"]
    docs = documented()
    assert set(docs) == set(PUBLIC)
    for name, endpoint in info["named_endpoints"].items():
        params = {p["parameter_name"] for p in endpoint["parameters"]}
        assert params == docs[name.lstrip("/")][0], f"docs/API.md's {name} parameters differ from the app's"
        assert len(endpoint["returns"]) == docs[name.lstrip("/")][1], f"docs/API.md's {name} returns differ"
        assert not any(re.fullmatch(r"param_\d+", p) for p in params), f"{name} has unnamed parameters"


def test_generate_by_name_records_a_finished_run(client, stored_runs):
    """speculative, whose draft is not the opening one (EAGLE's head): the draft left out becomes its own."""
    api, db = client
    out = api.predict(prompt="def add(a, b):\n", method="speculative", max_new=6, against_ar=False,
                      api_name="/generate")
    assert "tiny-code-draft" in out[0]
    assert status_of(out[0]) == "finished"
    assert "finished" in {status for _, status in stored_runs(db)}


def test_generate_diffusion_needs_no_method_changed_first(client):
    """`method` and its model only: the DAG's `strategy`, left in the shared input, becomes diffusion's default, as
    choosing diffusion in the tab would have set it."""
    out = client[0].predict(method="diffusion", model="tiny-code-diffusion", max_new=8, against_ar=False,
                            api_name="/generate")
    assert status_of(out[0]) == "finished", out[0][:400]
    default = next(p.default for p in METHODS["diffusion"].params if p.name == "strategy")
    assert "tiny-code-diffusion" in out[0] and f"strategy={default}" in out[0]


def test_generate_refuses_a_value_the_method_cannot_take_in_one_line(client):
    out = client[0].predict(method="diffusion", model="tiny-code-diffusion", strategy="beam", max_new=8,
                            against_ar=False, api_name="/generate")
    assert 'data-error="1"' in out[0] and "strategy must be one of" in out[0]


def test_diffusion_tab_by_name(client):
    verdict, *rest = client[0].predict(max_new=8, thresholds="", api_name="/diffusion")
    assert re.search(r"\d+ forwards slow vs \d+ fast", verdict), verdict[:400]
    assert "pg-error" not in verdict


def test_history_lists_the_runs_and_replay_and_save_html_need_no_history_first(client):
    api, _ = client
    table, _gallery, _ = api.predict(api_name="/history")
    ids = [row[0] for row in table["data"]]
    assert ids, "the runs made above are listed"
    fresh = Client(api.src, verbose=False)  # a new session, that never listed the runs: the picker has no choices
    slider, status, *_ = fresh.predict(run_id=ids[0], api_name="/replay")
    assert status_of(status) == "finished" and slider["value"] > 0
    saved = fresh.predict(run_id=ids[0], api_name="/save_html")
    assert "<html" in Path(saved["value"]).read_text()[:500].lower()
    refused = fresh.predict(run_id="x", api_name="/replay")[1]
    assert 'data-error="1"' in refused and "run id must be a whole number" in refused


def test_internal_events_are_not_offered(client):
    with pytest.raises(ValueError):
        client[0].predict("diffusion", "tiny-code", "", "", api_name="/method_changed")


def test_inputs_left_at_the_opening_values_settle_to_what_choosing_the_method_sets():
    opening = {name: opening_value(p, first_method()) for name, p in method_params().items()}
    defaults = {p.name: p.default for p in METHODS["diffusion"].params}
    assert opening["strategy"] != defaults["strategy"]  # the bug: another method's strategy was sent
    assert chosen_params("diffusion", opening)["strategy"] == defaults["strategy"]
    assert chosen_params("diffusion", {**opening, "strategy": "beam"})["strategy"] == "beam"  # refused later
    assert chosen_params("diffusion", {**opening, "strategy": "sched"})["strategy"] == "sched"
    assert settled_draft("speculative", "tiny-code", "tiny-code-eagle") == "tiny-code-draft"
    assert settled_draft("eagle", "tiny-code", "tiny-code-eagle") == "tiny-code-eagle"
    assert settled_draft("speculative", "tiny-code", "my/draft") == "my/draft"  # what a person named is kept
