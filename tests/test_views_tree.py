"""The tree views, on real recorded tree runs of the shipped models: frames per draft round and per verification,
states drawn as the target decided them, a layout whose edges never cross, escaping, and the two charts."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import pytest

from playground.events import ACCEPTED as COMMITTED
from playground.events import BONUS, REPLACEMENT, RunStarted, Step, TreeRecord
from playground.runtime.tree_attention import NODE_ACCEPTED as ACCEPTED
from playground.runtime.tree_attention import NODE_PRUNED as PRUNED
from playground.runtime.tree_attention import NODE_REJECTED as REJECTED
from playground.runtime.tree_attention import NODE_UNREACHED as UNREACHED
from playground.runtime.tree_attention import depths
from playground.views import run as views
from playground.views import tree as views_tree

PROMPT = "def is_prime(n):\n    if n < 2:\n"


@pytest.fixture(scope="module")
def runs(shipped_pair, run_engine) -> dict:
    """(RunStarted, steps) of a dynamic tree, of a dynamic tree with a budget of 4 nodes, and of token recycling."""
    common = dict(prompt=PROMPT, model=shipped_pair.target, draft=shipped_pair.draft)
    out = {}
    for name, method, params, n in (("dynamic", "tree_speculative", {}, 16),
                                    ("small", "tree_speculative", {"nodes": 4}, 12),
                                    ("recycling", "token_recycling", {}, 16)):
        started, steps, finished = run_engine(method=method, params=params, max_new_tokens=n, **common)
        assert finished.status == "finished" and any(s.tree for s in steps)
        out[name] = (started, steps)
    return out


def uids(fig: dict) -> dict[str, int]:
    return {trace["uid"]: i for i, trace in enumerate(fig["data"])}


def test_each_step_grows_round_by_round_then_shows_the_target_s_verdict(runs):
    for started, steps in runs.values():
        fig = views_tree.tree_figure(started, steps)
        at = uids(fig)
        frames = {f["name"]: f["data"] for f in fig["frames"]}
        names = [f["name"] for f in fig["frames"]]
        trees = [s for s in steps if s.tree]
        assert len(names) == sum(len(set(s.tree.rounds)) + 1 for s in trees)
        for step in trees:
            rounds = sorted(set(step.tree.rounds))
            assert [n for n in names if n.startswith(f"{step.index}:")] == \
                [*(f"{step.index}:{r}" for r in rounds), f"{step.index}:verified"]
            for r in rounds:  # growing: every node drafted so far, none with a verdict yet
                data = frames[f"{step.index}:{r}"]
                assert len(data[at["drafted"]]["x"]) + len(data[at["new"]]["x"]) == \
                    sum(x <= r for x in step.tree.rounds)
                assert len(data[at["new"]]["x"]) == step.tree.rounds.count(r)
                assert all(not data[at[s]]["x"] for s in (ACCEPTED, REJECTED, UNREACHED, PRUNED))
            verified = frames[f"{step.index}:verified"]
            for state in (ACCEPTED, REJECTED, UNREACHED, PRUNED):
                assert len(verified[at[state]]["x"]) == step.tree.states.count(state)
            assert len(verified[at[ACCEPTED]]["x"]) == step.accepted  # the accepted path, one node per depth
            assert sorted(verified[at[ACCEPTED]]["x"]) == list(range(1, step.accepted + 1))
            own = verified[at["target"]]["x"]  # the target's own token, one deeper than the path
            assert own == ([step.accepted + 1] if step.sources[-1] in (REPLACEMENT, BONUS) and
                           len(step.tokens) == step.accepted + 1 else [])
        assert fig["layout"]["sliders"][0]["active"] == len(names) - 1  # opens at the newest step, verified
        assert [s["label"] for s in fig["layout"]["sliders"][0]["steps"]][-1] == f"step {trees[-1].number} · verified"
        assert fig["data"][at[ACCEPTED]]["x"] == frames[names[-1]][at[ACCEPTED]]["x"]


def test_a_small_node_budget_prunes_nodes_that_are_never_verified(runs):
    started, steps = runs["small"]
    fig = views_tree.tree_figure(started, steps)
    at = uids(fig)
    frames = {f["name"]: f["data"] for f in fig["frames"]}
    pruned = 0
    for step in (s for s in steps if s.tree):
        assert step.proposed <= 4
        drawn = frames[f"{step.index}:verified"][at[PRUNED]]
        assert len(drawn["x"]) == step.tree.states.count(PRUNED) == len(step.tree.tokens) - step.proposed
        assert all(p is None for p in drawn["customdata"])  # no target probability: never sent to the target
        pruned += len(drawn["x"])
    assert pruned > 0
    assert "never verified" in fig["data"][at[PRUNED]]["hovertemplate"]


def test_token_recycling_colours_by_the_recycled_probability(runs):
    started, steps = runs["recycling"]
    fig = views_tree.tree_figure(started, steps)
    assert "q (recycled)" in fig["data"][uids(fig)[ACCEPTED]]["hovertemplate"]
    assert "q (draft)" in views_tree.tree_figure(*runs["dynamic"])["data"][uids(fig)[ACCEPTED]]["hovertemplate"]


def test_layout_layers_by_depth_and_edges_never_cross(runs):
    for _, steps in runs.values():
        for step in (s for s in steps if s.tree):
            pos = views_tree.positions(step)
            depth = depths(step.tree.parents)
            assert pos[views_tree.ROOT] == (0, 0)
            assert all(pos[i][0] == depth[i] for i in range(len(step.tree.tokens)))
            parent = dict(enumerate(step.tree.parents))
            if views_tree.TARGET_NODE in pos:
                parent[views_tree.TARGET_NODE] = views_tree.target_parent(step)
            for a in parent:
                for b in parent:
                    if a < b and pos[a][0] == pos[b][0]:
                        assert abs(pos[a][1] - pos[b][1]) >= 1 - 1e-9  # no two nodes of a layer on top of another
                        pa, pb = pos[parent[a]][1], pos[parent[b]][1]
                        assert (pos[a][1] - pos[b][1]) * (pa - pb) >= 0  # children keep their parents' order


def test_model_text_is_escaped_and_whitespace_shown(runs):
    started, steps = runs["dynamic"]
    step = next(s for s in steps if s.tree)
    step = replace(step, tree=replace(step.tree, texts=["<script>alert(1)</script>", 'a "b"\n\t',
                                                        *step.tree.texts[2:]]))
    out = views_tree.tree_html(started, [step])
    assert "<script" not in out
    data = re.search(r'<div class="pg-anim-data" hidden>(.*?)</div>', out, re.S).group(1)
    fig = json.loads(html.unescape(data))
    def of(key):
        return [t for f in fig["frames"] if f["name"].startswith(f"{step.index}:")
                for trace in f["data"] for t in trace.get(key, [])]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in of("hovertext")  # Plotly shows it as text, runs nothing
    assert 'a·"b"↵⇥' in of("hovertext") and 'a·"b"↵⇥' in of("text")  # quotes stay: Plotly would show &quot;
    cut = [t for t in of("text") if t.startswith("&lt;script&gt;")]  # too long for its column: cut, then escaped
    assert cut and all(t.endswith("…") and len(html.unescape(t)) < len("<script>alert(1)</script>") for t in cut)
    assert views_tree.shown("") == "∅" and views_tree.shown("abcdef", 4) == "abc…"


def test_depth_acceptance_counts_steps_by_hand():
    def tree_step(index: int, parents: list[int], states: list[str], accepted: int) -> Step:
        n, depth = len(parents), []
        for p in parents:
            depth.append(1 if p < 0 else depth[p] + 1)
        return Step(index=index, tokens=[1] * (accepted + 1), sources=[COMMITTED] * accepted + [REPLACEMENT],
                    p=[0.5] * (accepted + 1), q=[0.5] * accepted + [None], accepted=accepted,
                    tree=TreeRecord(tokens=[7] * n, parents=parents, q=[0.5] * n,
                                    p=[None if s == PRUNED else 0.5 for s in states], states=states,
                                    rounds=[d - 1 for d in depth], texts=["t"] * n))

    steps = [tree_step(0, [-1, 0, -1], [ACCEPTED, REJECTED, REJECTED], 1),              # verified depth 2
             tree_step(1, [-1, 0], [REJECTED, PRUNED], 0),                             # depth 1 (2 is pruned)
             tree_step(2, [-1, 0, 1, 1], [ACCEPTED, ACCEPTED, ACCEPTED, REJECTED], 3)]  # depth 3
    # depth 1: all 3 trees reach it, steps 0 and 2 accept that deep; depth 2: steps 0 and 2, only 2 accepts it
    assert views_tree.depth_acceptance(steps) == [(1, 3, 2), (2, 2, 1), (3, 1, 1)]
    bars = views_tree.depth_acceptance_figure(steps).data[0]
    assert list(bars.x) == [1, 2, 3] and list(bars.y) == [2 / 3, 1 / 2, 1.0]
    assert list(bars.text) == ["2/3", "1/2", "1/1"]
    sizes = {t.name: list(t.y) for t in views_tree.tree_size_figure(steps).data}
    assert sizes == {"drafted (pruned included)": [3, 2, 4], "verified by the target": [3, 1, 4],
                     "accepted path": [1, 0, 3]}


def test_run_view_shows_the_tree_views_for_tree_runs_only(runs):
    started, steps = runs["dynamic"]
    plain = views.run_view(RunStarted(method="autoregressive", model="m", draft=None, prompt="p", prompt_ids=[1],
                                      settings={}), [Step(index=0, tokens=[1], sources=["target"], p=[1.0], q=[None])])
    assert plain.tree is None and plain.tree_size is None and plain.depth_acceptance is None
    for k in (1, len(steps)):  # the replay at step k draws what the live view drew after k steps
        live, replay = views.run_view(started, steps[:k]), views.run_view(started, steps[:k], total=len(steps))
        assert live.tree == replay.tree and 'class="pg-tree"' in live.tree
        assert live.tree_size.to_json() == replay.tree_size.to_json()
        assert live.drafts is None, "a tree run's size chart replaces the chain's draft-length chart"
    overview = views_tree.tree_figure(started, steps, overview=True)
    last = [s for s in steps if s.tree][-1]
    opened = overview["frames"][overview["layout"]["sliders"][0]["active"]]
    assert opened["name"] == f"{last.index}:verified"  # Compare's overview opens at the run's end, as the wide view
    assert overview["layout"]["sliders"][0]["active"] == len(overview["frames"]) - 1
