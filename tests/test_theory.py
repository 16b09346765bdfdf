"""The theory next to a run: alpha estimated from the run, the expected tokens per forward it predicts, the ideal
speedup from the forwards' costs, and the panel comparing a run with autoregressive decoding."""

from __future__ import annotations

import random

import pytest

from playground.analysis import theory
from playground.events import (
    ACCEPTED,
    BONUS,
    REPLACEMENT,
    TARGET,
    CanvasRecord,
    DagRecord,
    RunFinished,
    Stats,
    Step,
    TreeRecord,
)
from playground.views import run as views
from playground.views import theory as views_theory


def chain_step(index: int, gamma: int, accepted: int, draft_s: float = 0.01, target_s: float = 0.05) -> Step:
    """A step that drafted `gamma` tokens and had the first `accepted` of them accepted."""
    last = BONUS if accepted == gamma else REPLACEMENT
    n = accepted + 1
    return Step(index=index, tokens=list(range(n)), sources=[ACCEPTED] * accepted + [last], p=[0.9] * n,
                q=[0.5] * accepted + [None], drafted=list(range(gamma)), draft_p=[0.5] * gamma,
                draft_q=[0.5] * gamma, accepted=accepted, gamma=gamma, draft_forwards=gamma, draft_s=draft_s,
                target_s=target_s)


def iid_run(alpha: float, gamma: int, steps: int, seed: int = 0) -> list[Step]:
    """Steps whose drafted tokens are each accepted with probability alpha, independently."""
    rng = random.Random(seed)
    out = []
    for i in range(steps):
        k = 0
        while k < gamma and rng.random() < alpha:
            k += 1
        out.append(chain_step(i, gamma, k))
    return out


def test_expected_tokens_is_leviathans_formula():
    assert theory.expected_tokens(0.5, 4) == pytest.approx(1.9375)  # 1 + 1/2 + 1/4 + 1/8 + 1/16
    assert theory.expected_tokens(0.0, 4) == 1.0
    assert theory.expected_tokens(1.0, 4) == 5.0
    assert theory.expected_tokens(0.8, 0) == 1.0


@pytest.mark.parametrize("alpha,gamma", [(0.3, 4), (0.6, 4), (0.8, 8)])
def test_on_iid_acceptance_the_estimate_and_the_prediction_match_the_run(alpha, gamma):
    steps = iid_run(alpha, gamma, 4000, seed=int(alpha * 10))
    prediction = theory.predict(steps)
    assert prediction.alpha == pytest.approx(alpha, abs=0.02)
    assert prediction.predicted == pytest.approx(prediction.measured, rel=0.03)
    assert prediction.measured == pytest.approx(theory.expected_tokens(alpha, gamma), rel=0.04)
    rows = theory.by_position(steps)
    assert [position for position, _, _ in rows] == list(range(1, gamma + 1))
    for _, reached, accepted in rows:  # i.i.d.: the same rate at every position, within 4 sigma
        assert accepted / reached == pytest.approx(alpha, abs=4 * (alpha * (1 - alpha) / reached) ** 0.5)


def test_acceptance_that_falls_with_position_is_told_apart_from_the_theory():
    # the first drafted token is always accepted, the second never: alpha = 1/2, but every step makes 2 tokens
    steps = [chain_step(i, 4, 1) for i in range(20)]
    prediction = theory.predict(steps)
    assert prediction.alpha == pytest.approx(0.5) and prediction.measured == pytest.approx(2.0)
    assert prediction.predicted == pytest.approx(1.9375)
    assert theory.by_position(steps) == [(1, 20, 20), (2, 20, 0)]


def tree_step(index: int, parents: list[int], q: list[float], states: list[str]) -> Step:
    """A verified draft tree; `accepted` and the committed tokens follow from the states."""
    accepted = states.count("accepted")
    n = accepted + 1
    return Step(index=index, tokens=list(range(n)), sources=[ACCEPTED] * accepted + [REPLACEMENT], p=[0.9] * n,
                q=[0.5] * accepted + [None], drafted=list(range(accepted + 1)), accepted=accepted,
                tree=TreeRecord(tokens=list(range(len(parents))), parents=parents, q=q, states=states),
                gamma=len(parents), draft_forwards=2, draft_s=0.01, target_s=0.05)


SHAPE = ([-1, -1, 0, 0, 2], [0.6, 0.3, 0.5, 0.2, 0.7])  # root: A (0), B (1); A: C (2), D (3); C: E (4)


def positional_run(p: dict[int, float], steps: int, seed: int = 0) -> list[Step]:
    """Steps over SHAPE whose children are tried likeliest first, the k-th accepted with probability p[k]."""
    rng, (parents, q) = random.Random(seed), SHAPE
    out = []
    for index in range(steps):
        states, at = ["unreached"] * len(parents), -1
        while True:
            kids = sorted((i for i, par in enumerate(parents) if par == at), key=lambda i: -q[i])
            taken = next((i for k, i in enumerate(kids, 1) if rng.random() < p[k]), None)
            for i in kids:
                states[i] = "accepted" if i == taken else "rejected"
            if taken is None:
                break
            at = taken
        out.append(tree_step(index, parents, q, states))
    return out


def test_positional_theory_of_trees():
    parents, q = SHAPE
    step = tree_step(0, parents, q, ["accepted", "rejected", "accepted", "rejected", "rejected"])
    p = {1: 0.5, 2: 0.5}
    # A 0.5, B 0.5 * 0.5, C 0.5 * 0.5, D 0.5 * 0.5 * 0.5, E 0.25 * 0.5
    assert theory.tree_expected_tokens(step, p) == pytest.approx(1 + 0.5 + 0.25 + 0.25 + 0.125 + 0.125)
    assert theory.by_rank([step]) == [(1, 3, 2)]  # root: A taken; A: C taken; C: E tried, turned down
    second = tree_step(1, parents, q, ["rejected", "accepted", "unreached", "unreached", "unreached"])
    assert theory.by_rank([step, second]) == [(1, 4, 2), (2, 1, 1)]  # root: A turned down, then B taken
    chain = tree_step(0, [-1, 0, 1, 2], [0.9] * 4, ["accepted"] * 4)
    assert theory.tree_expected_tokens(chain, {1: 0.7}) == pytest.approx(theory.expected_tokens(0.7, 4))
    pruned = tree_step(0, parents, q, ["accepted", "pruned", "rejected", "rejected", "unreached"])
    # B was pruned, so it is not in the verified tree; with every first child sure, A, C and E are accepted
    assert theory.tree_expected_tokens(pruned, {1: 1.0, 2: 1.0}) == pytest.approx(4.0)


def test_on_positional_acceptance_the_tree_prediction_matches_the_run():
    p = {1: 0.6, 2: 0.3}
    steps = positional_run(p, 4000)
    for k, tried, accepted in theory.by_rank(steps):
        assert accepted / tried == pytest.approx(p[k], abs=4 * (p[k] * (1 - p[k]) / tried) ** 0.5)
    prediction = theory.predict(steps)
    assert prediction.kind == "tree" and prediction.alpha == pytest.approx(0.6, abs=0.03)
    assert prediction.predicted == pytest.approx(prediction.measured, rel=0.03)
    fig = views_theory.theory_figure(prediction)
    assert fig.layout.xaxis.title.text.startswith("rank among siblings")
    assert list(fig.layout.xaxis.ticktext) == [f"{k}<br><sub>{a}/{n}</sub>" for k, n, a in prediction.rows]


def test_autoregressive_diffusion_and_dag_runs_have_no_theory():
    plain = [Step(index=i, tokens=[i], sources=[TARGET], p=[1.0], q=[None]) for i in range(3)]
    canvas = Step(index=0, tokens=[1], sources=[TARGET], p=[1.0], q=[None], canvas=CanvasRecord(positions=[0]))
    graph = Step(index=0, tokens=[1], sources=[TARGET], p=[1.0], q=[None], dag=DagRecord(path=[0]))
    for steps in (plain, [canvas], [graph], []):
        assert theory.chain_steps(steps) == [] and theory.tree_steps(steps) == []
        assert theory.predict(steps) is None and views.run_view(None, steps).theory is None
    assert theory.chain_steps([chain_step(0, 4, 0), *plain])  # a copying run's steps without a draft count too


def test_ideal_speedup_from_the_costs_of_the_forwards():
    steps = [chain_step(i, 4, 4 if i % 2 else 0, draft_s=0.004, target_s=0.012) for i in range(10)]
    stats = Stats.from_steps(steps, wall_s=0.2)          # 30 tokens in 10 verifications, 40 draft forwards
    baseline = Stats(new_tokens=30, target_forwards=30, verify_s=0.3, wall_s=0.32, tokens_per_s=30 / 0.32)
    s = theory.speedup(steps, stats, baseline)
    assert s.c == pytest.approx(0.1) and s.v == pytest.approx(1.2) and s.draft_per_step == 4
    assert s.from_costs == pytest.approx(3.0 / (4 * 0.1 + 1.2))
    alpha = 20 / 25  # 20 accepted, 5 rejections
    assert s.ideal == pytest.approx(theory.expected_tokens(alpha, 4) / 1.6)
    assert s.measured == pytest.approx(stats.tokens_per_s / baseline.tokens_per_s)
    assert s.other_share == pytest.approx(1 - 0.16 / 0.2)
    assert theory.speedup(steps, stats, Stats()) is None  # no baseline to measure against


def finished(ids: list[int], steps: list[Step], status: str = "finished", error: str | None = None,
             run_id: int = 1) -> RunFinished:
    return RunFinished(status=status, text="", token_ids=ids, run_id=run_id, error=error,
                       stats=Stats.from_steps(steps, sum(s.draft_s + s.target_s for s in steps) or 1.0))


def test_baseline_panel_says_identical_different_sampled_or_failed():
    steps = [chain_step(i, 4, 2) for i in range(4)]
    ar_steps = [Step(index=i, tokens=[i], sources=[TARGET], p=[1.0], q=[None], target_s=0.05) for i in range(12)]
    run, ar = finished(list(range(12)), steps), finished(list(range(12)), ar_steps, run_id=2)
    same = views_theory.baseline_html(steps, run, ar, greedy=True)
    assert 'data-verdict="identical"' in same and "run #2" in same and "12 tokens" in same
    assert 'data-stat="speedup"' in same and 'data-stat="ideal"' in same and "×" in same
    other = finished([0, 1, 2, 9] + list(range(4, 12)), ar_steps, run_id=3)
    assert 'data-verdict="different"' in views_theory.baseline_html(steps, run, other, greedy=True)
    assert "token 3 on" in views_theory.baseline_html(steps, run, other, greedy=True)
    assert 'data-verdict="sampled"' in views_theory.baseline_html(steps, run, other, greedy=False)
    failed = finished([], [], status="error", error="<b>out of memory</b>")
    out = views_theory.baseline_html(steps, run, failed, greedy=True)
    assert 'data-verdict="failed"' in out and "&lt;b&gt;out of memory" in out and "<b>out" not in out
    assert 'data-verdict="running"' in views_theory.baseline_html(steps, run, None, greedy=True, running=True)
    assert views_theory.baseline_html(steps, run, None, greedy=True) is None


def test_the_run_view_draws_the_theory_for_chains():
    steps = iid_run(0.6, 4, 30)
    view = views.run_view(None, steps)
    assert view.theory is not None and "theory" in view.theory.layout.title.text
    names = [t.name for t in view.progress.data]
    assert any(n.startswith("i.i.d. theory") for n in names)
    plain = [Step(index=i, tokens=[i], sources=[TARGET], p=[1.0], q=[None]) for i in range(3)]
    assert views.run_view(None, plain).theory is None
    assert len(views.run_view(None, plain).progress.data) == 2


def test_the_theory_tab_finds_the_best_draft_length():
    summary, tokens, speed = views_theory.explorer(alpha=0.71, c=0.24, v1=1.22, dv=0.03, max_gamma=12)
    costs = [1.0] + [1.22 + 0.03 * (g - 1) for g in range(1, 13)]
    want = max(range(13), key=lambda g: theory.expected_tokens(0.71, g) / (g * 0.24 + costs[g]))
    assert f'data-best="{want}"' in summary and want >= 1
    assert list(speed.data[1].y)[0] == pytest.approx(1.0)  # gamma 0 is autoregressive decoding itself
    assert list(tokens.data[-1].y) == pytest.approx([theory.expected_tokens(0.71, g) for g in range(13)])
    summary, _, _ = views_theory.explorer(alpha=0.3, c=0.9, v1=1.5, dv=0.1, max_gamma=8)
    assert 'data-best="0"' in summary and "does not pay" in summary
    summary, _, _ = views_theory.explorer(alpha=0.95, c=0.0, v1=1.0, dv=0.0, max_gamma=32)
    assert 'data-best="32"' in summary  # free drafts, free verification: the longest draft wins


def test_sequoias_best_tree():
    # one child a node: the best tree is the chain, and its value Leviathan's formula
    assert theory.best_tree([0.7], 4, 4) == (pytest.approx(theory.expected_tokens(0.7, 4)), [-1, 0, 1, 2])
    assert theory.best_tree([0.5, 0.5], 2, 1) == (pytest.approx(1.75), [-1, -1])  # one level: two children
    p = {1: 0.75, 2: 0.39, 3: 0.15}
    values = []
    for nodes, depth in ((3, 2), (8, 3), (16, 6), (24, 8)):
        value, parents = theory.best_tree(list(p.values()), nodes, depth)
        assert len(parents) <= nodes and max(depth_of(parents)) <= depth
        # the shape it returns is worth what it says, children ranked in the order given
        q = [1.0 - 0.01 * i for i in range(len(parents))]
        step = tree_step(0, parents, q, ["rejected"] * len(parents))
        assert theory.tree_expected_tokens(step, p) == pytest.approx(value)
        values.append(value)
    assert values == sorted(values)  # more nodes and depth never make it worse
    small = max(theory.tree_expected_tokens(tree_step(0, par, [0.9, 0.8, 0.7][:len(par)], ["rejected"] * len(par)), p)
                for par in ([-1, -1, -1], [-1, -1, 0], [-1, -1, 1], [-1, 0, 0], [-1, 0, -1]))
    assert theory.best_tree(list(p.values()), 3, 2)[0] == pytest.approx(small)  # every tree of 3 nodes, 2 levels


def depth_of(parents: list[int]) -> list[int]:
    depths = []
    for parent in parents:
        depths.append(1 if parent < 0 else depths[parent] + 1)
    return depths


def test_the_theory_tab_draws_sequoias_best_tree():
    summary, fig = views_theory.best_tree_view([0.75, 0.39, 0.15], nodes=12, depth=4, c=0.24, v1=1.22, dv=0.03)
    value, parents = theory.best_tree([0.75, 0.39, 0.15], 12, 4)
    nodes = fig.data[1]
    assert len(nodes.x) == len(parents) == 12 and max(nodes.x) == 4
    assert sum(nodes.marker.color) == pytest.approx(value - 1)  # each node's chance of acceptance, summed
    assert f"{value:.2f}" in summary and "12 nodes in 4 levels" in summary
    speed = value / (4 * 0.24 + views_theory.verify_cost(12, 1.22, 0.03))
    assert f"{speed:.2f}×" in summary and f"{theory.expected_tokens(0.75, 4):.2f}" in summary


def test_a_runs_settings_for_the_theory_tab():
    steps = [chain_step(i, 4, 4 if i % 2 else 0, draft_s=0.004, target_s=0.012) for i in range(10)]
    stats = Stats.from_steps(steps, wall_s=0.2)
    baseline = Stats(new_tokens=30, target_forwards=30, verify_s=0.3, wall_s=0.32, tokens_per_s=30 / 0.32)
    settings = theory.settings_of(steps, stats, baseline)
    assert settings == {"alpha": pytest.approx(0.8), "c": pytest.approx(0.1), "v": pytest.approx(1.2), "p2": None,
                        "p3": None, "gamma": 4.0, "measured": pytest.approx(stats.tokens_per_s / baseline.tokens_per_s)}
    _, _, speed = views_theory.explorer(0.8, 0.1, 1.2, 0.0, 8, run=(settings["gamma"], settings["measured"]))
    assert speed.data[-1].x == (4.0,) and speed.data[-1].name.startswith("the run explored")
    trees = positional_run({1: 0.6, 2: 0.3}, 400)
    tree_stats = Stats.from_steps(trees, wall_s=1.0)
    tree_settings = theory.settings_of(trees, tree_stats, baseline)
    ranks = {k: a / n for k, n, a in theory.by_rank(trees)}
    assert tree_settings["alpha"] == ranks[1] and tree_settings["p2"] == ranks[2] and tree_settings["p3"] is None
    assert tree_settings["gamma"] is None  # a tree has no one draft length to mark on the chain's curve
    assert theory.settings_of(steps, stats, Stats()) is None  # nothing to price the costs against
    assert theory.speedup(steps, Stats(new_tokens=3, target_forwards=1), baseline) is None  # no time recorded
