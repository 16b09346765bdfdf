"""The DAG view (views_dag) on real runs of the numbers models, recorded to SQLite and replayed from it: one marker
per vertex, the path highlighted, what the browser needs to prune and to show a vertex's details, escaping, gad's
accepted drafts, and the DAG tab's verdict.

Models: the shipped tiny-numbers-dat / -ar / -nat, or PLAYGROUND_TEST_DAT / _AR / _NAT (names or folders).
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from playground.compare import dag as compare_dag
from playground.data import numbers
from playground.engine import Request, generate
from playground.events import RunStarted
from playground.storage.recorder import Recorder
from playground.views import dag as views_dag
from playground.views.common import fmt_prob as _prob

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "models"
NUMBERS = {k: os.environ.get(f"PLAYGROUND_TEST_{k.upper()}", name) for k, name in compare_dag.TAB_MODELS.items()}
PHRASE = "trois cent douze"
EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"


def numbers_missing() -> str | None:
    """Why the numbers models cannot be used yet (None: they can): the shipped ones are not trained yet and no
    PLAYGROUND_TEST_* variable points elsewhere."""
    for key, name in NUMBERS.items():
        if name == compare_dag.TAB_MODELS[key] and not (SHIPPED / name / "config.json").is_file():
            return f"assets/models/{name}/config.json is missing (the numbers models are not trained yet)"
    return None


def record(db, **fields) -> tuple:
    """A run recorded into `db`, then replayed from it alone: (RunStarted, steps, RunFinished)."""
    events = list(Recorder(db).record(generate(Request(prompt=PHRASE, max_new_tokens=48, **fields))))
    return Recorder(db).replay(next(e.run_id for e in events if isinstance(e, RunStarted)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A dag, an autoregressive, a gad and a NAT run of PHRASE, as replayed from the database."""
    if numbers_missing():
        pytest.skip(numbers_missing())
    db = tmp_path_factory.mktemp("dag") / "runs.db"
    return {"dag": record(db, model=NUMBERS["dat"], method="dag"),
            "ar": record(db, model=NUMBERS["ar"], method="autoregressive"),
            "gad": record(db, model=NUMBERS["ar"], method="gad", draft=NUMBERS["drafter"]),
            "nat": record(db, model=NUMBERS["nat"], method="dag")}


def trace(fig: dict, uid: str) -> dict:
    return next(t for t in fig["data"] if t["uid"] == uid)


def segments(t: dict) -> list[tuple]:
    """(from, to, probability) of each line of an edge trace: its points up to each None."""
    return [tuple(c) for x, c in zip(t["x"], t["customdata"]) if x is None]


def test_one_marker_per_vertex_with_the_path_on_the_middle_row(runs):
    for key in ("dag", "nat", "gad"):
        started, steps, _ = runs[key]
        step = views_dag.graph_step(steps)
        fig = views_dag.dag_figure(started, steps)
        vertices = trace(fig, "vertices")
        size = len(step.dag.top)
        assert vertices["x"] == list(range(size)) and len(vertices["text"]) == size
        assert [c[0] for c in vertices["customdata"]] == list(range(size))
        assert step.dag.path[0] == 0 and step.dag.path[-1] == size - 1
        assert all(vertices["y"][v] == 0 for v in step.dag.path)
        assert all(vertices["y"][v] != 0 for v in set(range(size)) - set(step.dag.path))
        passing = dict(zip(step.dag.passing, vertices["marker"]["size"]))  # bigger when more paths pass
        assert [passing[p] for p in sorted(passing)] == sorted(passing.values())
        # the path: its own trace, one line per transition on it, in its own colour, wider than any other
        path = trace(fig, "path")
        assert [s[:2] for s in segments(path)] == list(zip(step.dag.path, step.dag.path[1:]))
        others = [t for t in fig["data"] if t["meta"] == "edges"]
        assert path["line"]["width"] > max(t["line"]["width"] for t in others)
        assert path["line"]["color"] not in {t["line"]["color"] for t in others}
        for v in step.dag.path[1:-1]:
            assert vertices["marker"]["color"][v] != views_dag.LOOK[views_dag.OFF]


def test_labels_are_the_emitted_tokens_on_the_path(runs):
    started, steps, finished = runs["dag"]
    step = steps[0]
    labels = trace(views_dag.dag_figure(started, steps), "vertices")["text"]
    assert labels[0] == "&lt;s&gt;"
    assert [html.unescape(labels[v]) for v in step.dag.path[1:]] == [views_dag.short(t) for t in step.texts]


def test_pruning_data_lets_the_page_hide_vertices_and_transitions(runs):
    started, steps, _ = runs["dag"]
    step = steps[0]
    fig = views_dag.dag_figure(started, steps)
    assert fig["dag"]["passing"] == step.dag.passing and fig["dag"]["path"] == step.dag.path
    edges = views_dag.transitions(step)
    assert edges == [e for e in step.dag.edges if e[0] < e[1]] and edges
    assert fig["dag"]["edges"] == edges
    on_path = set(zip(step.dag.path, step.dag.path[1:]))
    drawn = [s for t in fig["data"] if t["meta"] == "edges" for s in segments(t)]
    assert sorted(drawn) == sorted((a, b, p) for a, b, p in edges if (a, b) not in on_path)
    for t in fig["data"]:  # a line's width and opacity grow with its probability
        if t["meta"] == "edges" and t["customdata"]:
            low = next(b for b in views_dag.BUCKETS if b[1] == t["line"]["width"])[0]
            assert all(c[2] >= low for c in t["customdata"])
    page = views_dag.dag_html(started, steps)
    for name in ("vertices", "edges"):
        assert re.search(rf'<input type="range" data-prune="{name}" min="[\d.]+" max="1"', page)
        assert f'<output data-for="{name}">' in page
    assert f'data-vertices="{len(step.dag.top)}"' in page and f'data-edges="{len(edges)}"' in page


def test_details_of_each_vertex_list_its_top_tokens_and_strongest_transitions(runs):
    started, steps, _ = runs["dag"]
    step = steps[0]
    details = views_dag.dag_figure(started, steps)["dag"]["details"]
    assert len(details) == len(step.dag.top)
    j = step.dag.path[1]
    assert f"Vertex {j}</b>" in details[j] and "on the decoded path" in details[j]
    for text, p in zip(step.dag.top_texts[j], step.dag.top_p[j]):
        assert f"<code>{html.escape(text) or '∅'}</code>" in details[j] and _prob(p) in details[j]
    incoming = {a: p for a, b, p in views_dag.transitions(step) if b == j}
    outgoing = {b: p for a, b, p in views_dag.transitions(step) if a == j}
    listed_in = int(re.search(r"from vertex (\d+) ", details[j].split("strongest out")[0]).group(1))
    listed_out = int(re.search(r"to vertex (\d+) ", details[j].split("strongest out")[1]).group(1))
    assert incoming[listed_in] == max(incoming.values())  # the strongest first (ties in either order)
    assert outgoing[listed_out] == max(outgoing.values())


def test_model_text_is_escaped_in_labels_details_and_the_embedded_json(runs):
    started, steps, _ = runs["dag"]
    step = steps[0]
    evil = replace(step, dag=replace(step.dag, top_texts=[[EVIL] * len(t) for t in step.dag.top_texts]),
                   texts=[EVIL] * len(step.texts))
    page = views_dag.dag_html(started, [evil])
    assert "<script" not in page and "<img" not in page  # nothing but our own tags, in the page itself
    data = re.search(r'<div class="pg-anim-data" hidden>(.*?)</div>', page, re.S).group(1)
    fig = json.loads(html.unescape(data))  # what the browser reads (textContent)
    assert all("<script" not in text and "<img" not in text for text in trace(fig, "vertices")["text"])
    assert all("<script" not in d and "&lt;/script&gt;" in d for d in fig["dag"]["details"])
    assert all("<script" not in c[3] for c in trace(fig, "vertices")["customdata"])  # hover text


def test_gad_marks_the_drafted_tokens_the_verifier_accepted(runs):
    started, steps, finished = runs["gad"]
    first = views_dag.graph_step(steps)
    assert first is steps[0] and first.drafted
    states = views_dag.states(first)
    path = first.dag.path[1:]
    assert [states[v] for v in path[:first.accepted]] == ["accepted"] * first.accepted
    if first.accepted < len(first.drafted):
        assert states[path[first.accepted]] == "rejected"
        assert all(states[v] == "unverified" for v in path[first.accepted + 1:])
    drafts = views_dag.drafts_html(steps)
    drafted = [s for s in steps if s.drafted]
    assert f'data-accepted="{sum(s.accepted for s in drafted)}"' in drafts
    # step_html shows each accepted token twice: in the draft it came from, and among the step's committed tokens
    assert drafts.count("pg-chip pg-accepted") == 2 * sum(s.accepted for s in drafted[:views_dag.DRAFT_ROWS])
    assert drafts.count("pg-chip pg-rejected") == sum(s.rejected_at is not None for s in drafted[:views_dag.DRAFT_ROWS])
    assert "drafted, accepted by the verifier" in views_dag.dag_html(started, steps)


def test_no_graph_no_view(runs):
    started, steps, _ = runs["ar"]
    assert views_dag.dag_html(started, steps) is None and views_dag.drafts_html(steps) is None
    assert views_dag.dag_html(None, []) is None


def test_the_tab_verdict_compares_with_the_baseline(runs):
    verdict = compare_dag.verdict_html(runs)
    assert 'data-verdict="identical"' in verdict  # gad is lossless: the baseline's output, token for token
    for key in ("DAG", "GAD", "NAT"):
        assert re.search(rf"{key} [\d.]+×", verdict)
    side = compare_dag.side_html("gad", runs["gad"], runs["ar"][2])
    assert "drafted tokens accepted" in side and "the baseline's speed" in side
    s = runs["gad"][2].stats
    assert f"<b>{s.target_forwards} + {s.draft_forwards}</b><small>forward passes: the verifier's + the drafter's" \
        in side
    assert html.escape(runs["gad"][2].text) in side
    assert "Running" in compare_dag.verdict_html({"dag": runs["dag"], "ar": None}, "the baseline")


def test_the_dag_is_judged_by_the_task_when_the_phrase_is_a_number(runs):
    started, _, ar = runs["ar"]
    number = numbers.parse_french(started.prompt)
    assert number is not None and numbers.judge(ar.text, number) == "correct"

    def said(text: str, prompt: str = started.prompt) -> str:
        dag = replace(ar, text=text, token_ids=[-1])  # other tokens than the baseline's
        return compare_dag.dag_verdict(dag, ar, replace(started, prompt=prompt))
    others = sorted(numbers.renderings(number) - {ar.text})
    assert f"another correct rendering of {number:,}" in said(others[0])
    assert "is wrong" in said("zero")
    assert "differs from the baseline's" in said("zero", prompt="trois cent hello")  # not a number: by tokens
    assert "equals the baseline's" in compare_dag.dag_verdict(ar, ar, started)
    mixed = "two hundred forty forty-three thousand four hundred five"
    assert "mixes renderings" in compare_dag.dag_verdict(replace(ar, text=mixed, token_ids=[-1]), ar,
                                                          replace(started, prompt=numbers.french(243_405)))


def test_words_the_models_do_not_know_are_named(runs):
    started = next(generate(Request(prompt="Trois cent hello-douze <b>", model=NUMBERS["dat"], method="dag",
                                    max_new_tokens=8)))
    assert compare_dag.unknown_words(started) == ["hello", "<b>"]  # "Trois": the tokenizer lower-cases
    assert compare_dag.unknown_words(runs["dag"][0]) == []
    assert "data-unknown" not in compare_dag.verdict_html(runs)
    verdict = compare_dag.verdict_html({**runs, "dag": (started, *runs["dag"][1:])})
    assert 'data-unknown="2"' in verdict and "&#x27;&lt;b&gt;&#x27;" in verdict


def test_rows_keep_the_path_level_and_neighbouring_labels_apart():
    path = [0, 2, 3, 9, 11]
    row = views_dag.rows(12, path)
    assert [row[v] for v in path] == [0] * len(path)
    off = [j for j in range(12) if j not in path]
    assert all(row[j] != 0 for j in off)
    for a, b in zip(off, off[1:]):  # consecutive off-path vertices never share a row
        assert row[a] != row[b]
    xs, ys = views_dag._arc((3, 0), (9, 0))  # a skip along the path arcs over the vertices between
    assert min(ys) == 0 and 0.2 < max(ys) < 0.5 and xs[0] == 3 and xs[-1] == 9
    assert views_dag._arc((2, 0), (3, 0)) == ([2, 3], [0, 0])
