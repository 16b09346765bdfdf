"""Theory next to measurement (no Gradio here): a run's acceptance by draft position (chains) or sibling rank
(trees) and the tokens per forward theory predicts from it, the run against an autoregressive run of the same
prompt, and the Theory tab: curves over the draft length and Sequoia's best tree."""

from __future__ import annotations

import html
from itertools import accumulate

import plotly.graph_objects as go

from playground.analysis import theory
from playground.events import ACCEPTED, RunFinished, RunStarted, Step, TreeRecord
from playground.runtime.tree_attention import depths
from playground.views import tree as views_tree
from playground.views.common import (
    COLOURS,
    cards_html,
    first_difference,
    new_figure,
    style_figure,
)

THEORY = "#7c3aed"


def theory_figure(prediction: theory.Prediction | None) -> go.Figure | None:
    """Chains: per draft position, how often the target accepted it once it got there (the i.i.d. theory says
    alpha everywhere). Trees: per sibling rank, how often the k-th likeliest child of an accepted node was accepted
    when it was tried (the p_k of positional acceptance). The title compares tokens per forward with the theory's."""
    if prediction is None:
        return None
    chain, rows = prediction.kind == "chain", prediction.rows
    fig = new_figure()
    where = "draft position %{x}: accepted in %{customdata[1]} of the %{customdata[0]} steps that got this far" \
        if chain else "the child ranked %{x} by draft probability: accepted in %{customdata[1]} of the " \
                      "%{customdata[0]} times it was tried (its likelier siblings turned down)"
    fig.add_bar(x=[i for i, _, _ in rows], y=[a / n for _, n, a in rows],
                name="measured: accepted / reached it" if chain else "measured: accepted / tried",
                marker_color=COLOURS[ACCEPTED][0], customdata=[[n, a] for _, n, a in rows],
                hovertemplate=where + " (%{y:.0%})<extra></extra>")
    if chain:
        fig.add_scatter(x=[rows[0][0] - 0.5, rows[-1][0] + 0.5], y=[prediction.alpha] * 2, mode="lines",
                        name=f"i.i.d. theory: α = {prediction.alpha:.2f} = accepted / verified",
                        line=dict(color=THEORY, dash="dash", width=2), hoverinfo="skip")
    name = "i.i.d. theory" if chain else "positional theory"
    title = (f"Acceptance by {'draft position' if chain else 'sibling rank'}<br><sup>tokens per target forward: "
             f"measured {prediction.measured:.2f}, {name} {prediction.predicted:.2f}</sup>")
    style_figure(fig, title, "position in the draft" if chain else "rank among siblings (by draft probability)",
            "accepted", False)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    # the counts go under the axis, where the theory's line cannot cross them
    fig.update_xaxes(tickvals=[i for i, _, _ in rows], ticktext=[f"{i}<br><sub>{a}/{n}</sub>" for i, n, a in rows])
    return fig


def add_theory_line(fig: go.Figure, prediction: theory.Prediction | None) -> go.Figure:
    """The progress chart's third line: cumulative tokens the theory expects for the drafts the run made."""
    if prediction is None:
        return fig
    name = f"i.i.d. theory (α = {prediction.alpha:.2f})" if prediction.kind == "chain" else "positional theory"
    fig.add_scatter(x=[0, *accumulate(prediction.forwards)], y=[0, *accumulate(prediction.per_step)], name=name,
                    mode="lines",
                    line=dict(color=THEORY, dash="dot", width=2))
    return fig


REFERENCE_ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)


def verify_cost(gamma: int, v1: float, dv: float) -> float:
    """v for a draft of gamma tokens: v1 for one drafted token (two tokens verified), dv more for each further one;
    gamma 0 is autoregressive decoding, one token, 1 by definition."""
    return 1.0 if gamma == 0 else v1 + dv * (gamma - 1)


def explorer(alpha: float, c: float, v1: float, dv: float, max_gamma: int,
             run: tuple[float, float] | None = None) -> tuple[str, go.Figure, go.Figure]:
    """The Theory tab: for acceptance alpha, draft cost c and verification cost v (verify_cost), in autoregressive
    forwards, what each draft length gamma gives: tokens per target forward, and the ideal speedup, its best
    gamma marked; `run`, a run explored here: (its mean draft length, its measured speedup), marked too.
    Returns (summary HTML, tokens figure, speedup figure)."""
    gammas = list(range(0, max_gamma + 1))
    speedups = [theory.ideal_speedup(alpha, g, c, verify_cost(g, v1, dv)) for g in gammas]
    best = max(gammas, key=lambda g: speedups[g])
    tokens = new_figure()
    for a in REFERENCE_ALPHAS:
        tokens.add_scatter(x=gammas, y=[theory.expected_tokens(a, g) for g in gammas], name=f"α = {a:g}",
                           mode="lines+text", text=[""] * max_gamma + [f"α {a:g}"], textposition="top left",
                           textfont=dict(size=10, color="#94a3b8"), line=dict(color="#cbd5e1", width=1.5),
                           showlegend=False)
    tokens.add_scatter(x=gammas, y=[theory.expected_tokens(alpha, g) for g in gammas], name=f"α = {alpha:.2f}",
                       mode="lines+markers", line=dict(color=THEORY, width=3))
    style_figure(tokens, "Tokens per target forward: (1 − α^(γ+1)) / (1 − α)", "γ (tokens drafted a step)",
            "tokens per target forward", False)
    speed = new_figure()
    speed.add_scatter(x=[0, max_gamma], y=[1, 1], name="autoregressive", mode="lines",
                      line=dict(color="#9ca3af", dash="dash"))
    speed.add_scatter(x=gammas, y=speedups, name=f"α = {alpha:.2f}, c = {c:.2f}", mode="lines+markers",
                      line=dict(color=THEORY, width=3))
    speed.add_scatter(x=[best], y=[speedups[best]], name=f"best: γ = {best}", mode="markers",
                      marker=dict(size=14, color=COLOURS[ACCEPTED][0], symbol="star"))
    if run is not None:
        speed.add_scatter(x=[run[0]], y=[run[1]], name=f"the run explored: {run[1]:.2f}× measured", mode="markers",
                          marker=dict(size=13, color="#111827", symbol="diamond"),
                          hovertemplate="the run explored: %{x:.1f} tokens drafted a step on average, "
                                        "%{y:.2f}× autoregressive measured<extra></extra>")
    style_figure(speed, "Ideal speedup: tokens per step / (γ·c + v)", "γ (tokens drafted a step)",
            "× autoregressive", False)
    for fig in (tokens, speed):
        fig.update_xaxes(dtick=1 if max_gamma <= 16 else None, rangemode="tozero")
        fig.update_yaxes(rangemode="tozero")
    verdict = ("drafting does not pay: autoregressive decoding is fastest" if best == 0 else
               f"the best draft length is γ = {best}: {speedups[best]:.2f}× autoregressive, "
               f"{theory.expected_tokens(alpha, best):.2f} tokens per target forward")
    summary = cards_html([("best_gamma", str(best), "best γ"),
                          ("best_speedup", f"{speedups[best]:.2f}×", "its ideal speedup"),
                          ("best_tokens", f"{theory.expected_tokens(alpha, best):.2f}", "tokens per target forward"),
                          ("verify", f"{verify_cost(best, v1, dv):.2f}", "v at that γ (autoregressive forwards)")])
    verdict_html = f'<div class="pg-theory-verdict" data-best="{best}">With these costs {verdict}.</div>'
    return verdict_html + summary, tokens, speed


def best_tree_view(p: list[float], nodes: int, depth: int, c: float, v1: float, dv: float) -> tuple[str, go.Figure]:
    """The Theory tab's second part: Sequoia's best tree for acceptance by rank p within `nodes` and `depth`, drawn
    (networkx layout of views_tree) with each node coloured by the chance it is accepted, against the best chain of
    the same budget. Verifying n nodes costs v as for a chain of n (verify_cost); each level one draft forward."""
    value, parents = theory.best_tree(p, nodes, depth)
    n, levels = len(parents), max(depths(parents), default=0)
    step = Step(index=0, tokens=[], sources=[], p=[], q=[], tree=TreeRecord(
        tokens=list(range(n)), parents=parents, q=[1.0 - i / (n + 1) for i in range(n)],  # q: children in rank order
        states=["unreached"] * n))
    reach = theory.node_acceptance(step, {k: pk for k, pk in enumerate(p, 1)})
    where = views_tree.positions(step)
    fig = new_figure()
    edges = dict(x=[], y=[])
    for i, parent in enumerate(parents):
        for axis, a, b in (("x", where[parent][0], where[i][0]), ("y", where[parent][1], where[i][1])):
            edges[axis] += [a, b, None]
    fig.add_scatter(**edges, mode="lines", line=dict(color="#cbd5e1", width=1.5), hoverinfo="skip", showlegend=False)
    ranks = [sum(1 for j in range(i) if parents[j] == parents[i]) + 1 for i in range(n)]
    fig.add_scatter(x=[where[i][0] for i in range(n)], y=[where[i][1] for i in range(n)], mode="markers",
                    marker=dict(size=16, color=reach, colorscale="Greens", cmin=0, cmax=1, line=dict(color="#166534"),
                                colorbar=dict(title="P(accepted)", thickness=12)),
                    customdata=[[r, a] for r, a in zip(ranks, reach)], showlegend=False,
                    hovertemplate="child %{customdata[0]} of its parent<br>accepted with probability "
                                  "%{customdata[1]:.3f}<extra></extra>")
    fig.add_scatter(x=[0], y=[where[-1][1]], mode="markers", marker=dict(size=14, color="#111827", symbol="square"),
                    name="the newest committed token", hoverinfo="skip")
    chain = theory.expected_tokens(p[0], min(nodes, depth))
    speed = value / (levels * c + verify_cost(n, v1, dv))
    chain_speed = chain / (min(nodes, depth) * c + verify_cost(min(nodes, depth), v1, dv))
    style_figure(fig, f"Sequoia's best tree: {value:.2f} tokens per step, {speed:.2f}× autoregressive<br><sup>"
                 f"the chain of {min(nodes, depth)}: {chain:.2f} tokens, {chain_speed:.2f}×</sup>",
            "depth", "", False)
    fig.update_yaxes(visible=False)
    fig.update_xaxes(dtick=1)
    fig.update_layout(hovermode="closest", height=420)
    summary = cards_html([("tree_tokens", f"{value:.2f}", f"tokens per step: {n} nodes in {levels} levels"),
                          ("tree_speedup", f"{speed:.2f}×", "its ideal speedup: tokens / (levels × c + v)"),
                          ("chain_tokens", f"{chain:.2f}", f"the best chain within the budget ({min(nodes, depth)})"),
                          ("chain_speedup", f"{chain_speed:.2f}×", "its ideal speedup")])
    return summary, fig


def baseline_at(started: RunStarted, steps: list[Step], finished: RunFinished | None,
                reference: RunFinished | None, shown: int) -> str | None:
    """A stored run against its autoregressive `reference` as a replay shows it (History, an exported page): the
    whole outputs compared, so only once all `steps` are `shown`; None before, or without a reference."""
    if shown != len(steps) or reference is None:
        return None
    return baseline_html(steps, finished, reference, started.settings.get("temperature", 0) <= 0)


def baseline_html(steps: list[Step], finished: RunFinished | None, baseline: RunFinished | None, greedy: bool,
                  running: bool = False) -> str | None:
    """The run against autoregressive decoding of the same prompt, run right after it: is the output the same
    (greedy), how much faster it was, and what the theory predicted from the costs of its forwards."""
    if running:
        return ('<div class="pg-verdict" data-verdict="running">Running autoregressive decoding of the same prompt, '
                'to compare…</div>')
    if finished is None or baseline is None:
        return None
    if baseline.status != "finished":
        why = html.escape(baseline.error or baseline.status)
        return f'<div class="pg-verdict pg-differ" data-verdict="failed">Autoregressive run: {why}</div>'
    ar = f"autoregressive run #{baseline.run_id}"
    if not greedy:
        verdict = (f'<div class="pg-verdict" data-verdict="sampled">Sampled: the {ar} draws its own text, so the two '
                   f'differ; a lossless method keeps the target\'s distribution, not its samples.</div>')
    elif (at := first_difference(finished.token_ids, baseline.token_ids)) is None:
        verdict = (f'<div class="pg-verdict pg-same" data-verdict="identical">✓ Identical to the {ar}: the same '
                   f'{len(baseline.token_ids)} tokens, as a lossless method must write under greedy decoding.</div>')
    else:
        verdict = (f'<div class="pg-verdict pg-differ" data-verdict="different">✗ Differs from the {ar} from '
                   f'token {at} on: under greedy decoding a lossless method must write the same text.</div>')
    s = theory.speedup(steps, finished.stats, baseline.stats)
    if s is None:
        return verdict
    prediction = s.prediction
    tau = finished.stats.new_tokens / len(steps)
    cards = [("speedup", f"{s.measured:.2f}×", f"autoregressive's speed ({baseline.stats.tokens_per_s:.1f} "
                                                 f"tokens/s, measured right after)")]
    if s.ideal is not None:
        source = f"an i.i.d. α = {prediction.alpha:.2f}" if prediction.kind == "chain" else \
            "positional acceptance by sibling rank"
        cards.append(("ideal", f"{s.ideal:.2f}×", f"theory: τ / (draft forwards × c + v), with τ = "
                                                   f"{prediction.predicted:.2f} from {source}"))
    cards += [("from_costs", f"{s.from_costs:.2f}×", f"the same with the measured τ = {tau:.2f}; the other "
                                                      f"{s.other_share:.0%} of the run's time was neither drafting "
                                                      f"nor verifying (bookkeeping: sampling, trees, caches)"),
              ("costs", f"c {s.c:.2f} · v {s.v:.2f}",
               f"one draft forward (c) and one verification (v) in autoregressive forwards; "
               f"{s.draft_per_step:.1f} draft forwards a step")]
    return verdict + cards_html(cards, "pg-theory")
