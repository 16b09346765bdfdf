"""The eagle method's views: the target's layer stack with the feature the head reads lit and the head beside it,
from the steps' own fields, so that a run replayed from the database shows what the live run showed."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from playground.engine import Request, generate
from playground.events import ACCEPTED, REPLACEMENT, RunStarted, Step
from playground.models import loading as models
from playground.storage import payload
from playground.storage.recorder import Recorder
from playground.views import drafts as views_drafts
from playground.views import features
from playground.views import run as views

HOSTILE = "<script>alert(1)</script>"
HEAD = "tiny-code-eagle"


def feature_step(index: int, accepted: int, **fields) -> Step:
    return Step(index=index, tokens=[1] * (accepted + 1), sources=[ACCEPTED] * accepted + [REPLACEMENT],
                p=[0.9] * (accepted + 1), q=[0.8] * accepted + [None], drafted=[5, 6, 7], draft_p=[0.9, 0.5, 0.1],
                draft_q=[0.8, 0.6, 0.3], accepted=accepted, gamma=3, draft_forwards=3, texts=["t"] * (accepted + 1),
                drafted_texts=["a", HOSTILE, "c"], layers=4, tapped=[3], **fields)


def test_the_head_is_drawn_beside_the_target_layers_with_the_tapped_one_lit():
    steps = [feature_step(0, 2), feature_step(1, 1)]
    out = features.head_html(steps)
    assert re.findall(r'data-layer="(\d)" data-tapped="(\d)"', out) == [("0", "0"), ("1", "0"), ("2", "0"), ("3", "1")]
    assert 'pg-sub pg-norm pg-tapped' in out and "it reads its last layer, after the final norm" in out
    assert "EAGLE head" in out and ">fc<" in out and "1 layer" in out and "LM head (the target's)" in out
    assert "step 2" in out and "over the run 3 of 6 drafted tokens accepted (50%) in 6 head forwards" in out
    assert HOSTILE not in out and "&lt;script&gt;" in out  # the drafts are model text
    assert out.count("pg-accepted") == 1 and "pg-rejected" in out and "pg-unverified" in out  # step 2's drafts
    assert views_drafts.layer_stack_html(steps) is None  # nothing skipped: not a layer-skipping draft
    assert views.run_view(None, steps).layers == out
    assert features.head_html([replace(s, tapped=[], layers=0) for s in steps]) is None


def test_a_step_stored_before_tapped_existed_reads_back_without_it():
    stored = payload.step_payload(feature_step(0, 1))
    assert payload.step_from_payload(stored).tapped == [3]
    del stored["tapped"]
    assert payload.step_from_payload(stored).tapped == []


def test_the_settings_line_lists_what_the_tree_shape_uses():
    settings = {"tree": "dynamic", "gamma": 6, "schedule": "confidence", "min_confidence": 0.4, "nodes": 16,
                "depth": 8, "topk": 4, "min_path": 0.05, "branching": "3,2,2,1", "runtime": "lean"}

    def line(**changed):
        return views.status_html(RunStarted(method="eagle", model="m", draft="h", prompt="p", prompt_ids=[1],
                                            settings={**settings, **changed}))
    dynamic, chain, static = line(), line(tree="chain"), line(tree="static")
    assert "nodes=16" in dynamic and "runtime=lean" in dynamic
    assert not any(k in dynamic for k in ("gamma", "schedule", "min_confidence", "branching"))
    assert "gamma=6" in chain and "min_confidence=0.4" in chain and "nodes" not in chain
    assert "branching=3,2,2,1" in static and "depth" not in static and "gamma" not in static


@pytest.fixture(scope="module")
def recorded(shipped_pair, tmp_path_factory) -> dict:
    """(live, replayed) events of a dynamic-tree and a chain eagle run, each replayed from the database alone."""
    if HEAD not in models.shipped_models():
        pytest.skip(f"assets/models/{HEAD} is missing (the head is not trained yet)")
    db = tmp_path_factory.mktemp("eagle") / "runs.db"
    out = {}
    for tree in ("dynamic", "chain"):
        events = list(Recorder(db).record(generate(Request(prompt="def is_prime(n):\n", model=shipped_pair.target,
                                                           method="eagle", max_new_tokens=12,
                                                           params={"tree": tree}))))
        live = (events[0], [e for e in events if isinstance(e, Step)], events[-1])
        out[tree] = live, Recorder(db).replay(live[0].run_id)
    return out


def as_text(view: views.RunView) -> dict:
    return {k: v if v is None or isinstance(v, str) else v.to_json() for k, v in view._asdict().items()}


@pytest.mark.parametrize("tree", ["dynamic", "chain"])
def test_a_recorded_eagle_run_replays_the_head_and_its_drafts(recorded, tree):
    live, replayed = recorded[tree]
    assert live[0].draft == HEAD and live[2].status == "finished"
    shown = views.run_view(*live)
    assert as_text(shown) == as_text(views.run_view(*replayed))  # the same view, from the database alone
    layers = models.load(live[0].model).model.config.num_hidden_layers
    assert f'data-tapped="{layers - 1}" data-layers="{layers}"' in shown.layers and "EAGLE head" in shown.layers
    assert re.findall(r'data-layer="(\d+)" data-tapped="1"', shown.layers) == [str(layers - 1)]
    assert (shown.tree is not None, shown.depth_acceptance is not None) == (tree == "dynamic", tree == "dynamic")
    assert shown.theory is not None  # acceptance by draft position (chain) or sibling rank (tree)
    assert f"tree={tree}" in shown.status
