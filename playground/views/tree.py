"""The draft trees of the tree methods (tree_speculative, token_recycling), drawn from events alone (no Gradio here).

- `tree_figure`: each step's draft tree as a Plotly figure (a dict) with frames: per step, one frame per draft round
  (the tree growing, nodes coloured by q) and one once the target verified it (the accepted path green, rejected
  nodes red, the rest faded); its slider and Play/Pause walk through the run.
- `tree_html`: that figure as HTML for a gr.HTML that draws it with Plotly.js (static/player.js; gr.Plot drops
  frames); the controls and that HTML come from views/player.py, which every animated figure shares.
- `tree_size_figure`: per step, the nodes drafted, verified and accepted.
- `depth_acceptance_figure`: for each depth, how often the accepted path got as deep as the verified tree.
- `positions` (views/tree_layout.py): where each node goes, the layers and rows the figure draws it at.

Each returns None for runs without trees; the app then hides it. Model text is untrusted: every label and hover
goes through `html.escape` (Plotly reads tags in them), and the figure's JSON is escaped again inside the HTML.
"""

from __future__ import annotations

import plotly.graph_objects as go

from playground.events import ACCEPTED, BONUS, REPLACEMENT, TREE, RunStarted, Step
from playground.runtime.tree_attention import NODE_ACCEPTED, NODE_PRUNED, NODE_REJECTED, NODE_UNREACHED, depths
from playground.views.common import (
    COLOURS,
    LABELS,
    fmt_prob,
    new_figure,
    style_figure,
)
from playground.views.player import animated_html, player, shown
from playground.views.tree_layout import ROOT, TARGET_NODE, positions, target_parent  # noqa: F401 (ROOT: as before)

MAX_STEPS = 60       # the figure animates the last steps only: frames of a long run would weigh megabytes
DRAFTED, NEW = "drafted", "new"  # a node's look while its tree grows: made in an earlier round, in this one
SCALE = [[0, "#eff6ff"], [0.35, "#93c5fd"], [0.7, "#3b82f6"], [1, "#1e3a8a"]]  # q, 0..1
GREEN, RED = COLOURS[ACCEPTED][0], "#b91c1c"
# per look: edge to the node (colour, width, dash), node outline (colour, width), node opacity, label colour
LOOKS = {DRAFTED: (("#94a3b8", 1.5, "solid"), ("#ffffff", 1), 1.0, "#111827"),
         NEW: (("#94a3b8", 1.5, "solid"), ("#111827", 2), 1.0, "#111827"),
         NODE_PRUNED: (("#e2e8f0", 1, "dot"), ("#cbd5e1", 1), 0.25, "#cbd5e1"),
         NODE_UNREACHED: (("#cbd5e1", 1.2, "solid"), ("#9ca3af", 1), 0.45, "#9ca3af"),
         NODE_REJECTED: (("#fca5a5", 1.5, "solid"), (RED, 2.5), 0.85, RED),
         NODE_ACCEPTED: ((GREEN, 4.5, "solid"), (GREEN, 3.5), 1.0, "#14532d")}
# edge traces, in drawing order; then the target's edge
EDGES = (DRAFTED, NODE_PRUNED, NODE_UNREACHED, NODE_REJECTED, NODE_ACCEPTED)
HOVER = {DRAFTED: "drafted in round %{customdata}, not verified yet", NEW: "drafted in this round (%{customdata})",
         NODE_PRUNED: "pruned by the node budget: never verified",
         NODE_UNREACHED: "p (target) = %{customdata:.3g}<br>unreached: verified, but below a rejected node",
         NODE_REJECTED: "p (target) = %{customdata:.3g}<br>rejected by the target",
         NODE_ACCEPTED: "p (target) = %{customdata:.3g}<br>accepted: on the path the target took"}
LEGEND = ((NODE_ACCEPTED, "accepted path"), (NODE_REJECTED, "rejected by the target"),
          (NODE_UNREACHED, "unreached (below a rejection)"), (NODE_PRUNED, "pruned by the node budget, never verified"),
          (NEW, "drafted in the round shown"))

# the legend's keys, made from LOOKS (the figure's looks); the rest of the style sheet is static/playground.css
KEY_CSS = "\n".join(
    f".pg-key-{s} .pg-dot{{border:{max(2, w)}px solid {c};opacity:{max(o, 0.45)}}}"
    f".pg-key-{s} .pg-dash{{border-top-color:{e[0]};border-top-style:{'dotted' if e[2] == 'dot' else 'solid'}}}"
    for s, (e, (c, w), o, _) in LOOKS.items())


def tree_steps(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.kind == TREE]


def _edge(edge: dict, a: tuple[int, float], b: tuple[int, float]) -> None:
    """A line from parent a to child b: level under a's label, then an S-curve (a cubic Bezier with level ends,
    at t = 1/3 and 2/3; the trace smooths it as a spline)."""
    (x0, y0), (x1, y1) = a, b
    start = x0 + 0.45
    edge["x"].extend([x0, start, round(start + 0.37 * (x1 - start), 3), round(start + 0.63 * (x1 - start), 3), x1,
                      None])
    edge["y"].extend([y0, y0, round(y0 + 0.26 * (y1 - y0), 3), round(y0 + 0.74 * (y1 - y0), 3), y1, None])


def _frame(step: Step, pos: dict, root: str, upto: int | None, cut: int | None = None) -> list[dict]:
    """What every trace shows in one frame: the nodes drafted by round `upto` (no verdict yet), or, with None,
    the tree as the target verified it, with the target's own token. Node labels are `cut` to fit their column."""
    edges = {look: dict(x=[], y=[]) for look in (*EDGES, "target")}
    nodes = {look: dict(x=[], y=[], text=[], hovertext=[], customdata=[], marker=dict(color=[])) for look in LOOKS}
    tree = step.tree
    for i, parent in enumerate(tree.parents):
        if upto is not None and tree.rounds[i] > upto:
            continue
        look = tree.states[i] if upto is None else NEW if tree.rounds[i] == upto else DRAFTED
        _edge(edges[DRAFTED if upto is not None else look], pos[parent], pos[i])
        node = nodes[look]
        node["x"].append(pos[i][0])
        node["y"].append(pos[i][1])
        token = tree.texts[i] if i < len(tree.texts) else str(tree.tokens[i])
        node["text"].append(shown(token, cut))
        node["hovertext"].append(shown(token))
        node["marker"]["color"].append(round(tree.q[i], 4))
        p = tree.p[i] if i < len(tree.p) else None
        node["customdata"].append(tree.rounds[i] + 1 if upto is not None else None if p is None else round(p, 4))
    extra = target_parent(step) if upto is None else None
    own = dict(x=[], y=[], text=[], hovertext=[], customdata=[])
    if extra is not None:
        _edge(edges["target"], pos[extra], pos[TARGET_NODE])
        token = step.texts[-1] if step.texts else str(step.tokens[-1])
        own = dict(x=[pos[TARGET_NODE][0]], y=[pos[TARGET_NODE][1]], text=[shown(token, cut)],
                   hovertext=[shown(token)], marker=dict(color=COLOURS[step.sources[-1]][0]),
                   customdata=[[LABELS[step.sources[-1]], fmt_prob(step.p[-1])]])
    return [*edges.values(), *nodes.values(), dict(text=[shown(root)]), own]


def _title(step: Step, upto: int | None, rounds: int, short: bool) -> str:
    """What a frame shows: in full, or `short` for a narrow column."""
    head = f"<b>Step {step.number}</b> · "
    if upto is not None:
        made = sum(r <= upto for r in step.tree.rounds)
        return head + (f"round {upto + 1}/{rounds} · {made} drafted" if short else
                       f"draft round {upto + 1} of {rounds}: {made} nodes drafted")
    pruned = step.tree.states.count(NODE_PRUNED)
    if short:
        return head + f"{step.proposed} verified{f' · {pruned} pruned' if pruned else ''} · {step.accepted} accepted"
    own = f" + the target's own token ({LABELS[step.sources[-1]]})" if target_parent(step) is not None else ""
    cut = f" · {pruned} pruned" if pruned else ""
    return head + f"verified {step.proposed} nodes{cut} · accepted {step.accepted}{own}"


def _traces(q_name: str, overview: bool) -> list[dict]:
    """The figure's traces, in _frame's order, with what stays the same in every frame; each drawn trace is an
    SVG group of class `trace` + its uid. An overview labels no pruned node and has no colour bar."""
    halo = ", ".join(f"{a}px {b}px 0 white" for a in (-2, 0, 2) for b in (-2, 0, 2) if a or b) + ", 0 0 4px white"
    font = dict(family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", size=11 if overview else 13,
                shadow=halo)
    scatter = dict(type="scatter", x=[], y=[], cliponaxis=False)
    edges = [dict(scatter, uid=f"edges-{look}", mode="lines", hoverinfo="skip", line=dict(
        color=LOOKS[look][0][0], width=LOOKS[look][0][1], dash=LOOKS[look][0][2], shape="spline")) for look in EDGES]
    edges.append(dict(scatter, uid="edges-target", mode="lines", hoverinfo="skip",
                      line=dict(color="#6b7280", width=2, dash="dash", shape="spline")))
    nodes = [dict(scatter, uid=look, mode="markers" if overview and look == NODE_PRUNED else "markers+text",
                  textposition="middle right", textfont=dict(font, color=ink),
                  marker=dict(size=15, colorscale=SCALE, cmin=0, cmax=1, opacity=alpha,
                              line=dict(color=outline, width=width)),
                  hovertemplate=f"<b>%{{hovertext}}</b> · %{{x}}<br>{q_name} = %{{marker.color:.3g}}<br>"
                                f"{HOVER[look]}<extra></extra>")
             for look, (_, (outline, width), alpha, ink) in LOOKS.items()]
    root = dict(scatter, uid="root", x=[0], y=[0], mode="markers+text", textposition="middle left",
                textfont=dict(font, color="#111827", weight="bold"), marker=dict(symbol="square", size=16,
                                                                                 color="#111827"),
                hovertemplate="<b>%{text}</b><br>the root: the newest committed token<extra></extra>")
    own = dict(scatter, uid="target", mode="markers+text", textposition="middle right",
               textfont=dict(font, color="#374151"),
               marker=dict(symbol="diamond", size=17, line=dict(color="white", width=1)),
               hovertemplate="<b>%{hovertext}</b><br>the target's own token: %{customdata[0]}<br>"
                             "p (target) = %{customdata[1]}<extra></extra>")
    scale = dict(scatter, uid="scale", x=[0], y=[0], mode="markers", hoverinfo="skip", marker=dict(
        size=1, opacity=0, color=[0], colorscale=SCALE, cmin=0, cmax=1, showscale=not overview, colorbar=dict(
            title=dict(text=q_name, side="right"), thickness=12, len=0.45, y=0.75, outlinewidth=0)))
    return [*edges, *nodes, root, own, scale]


def tree_figure(started: RunStarted | None, steps: list[Step], overview: bool = False) -> dict | None:
    """The draft tree of every tree step (the last MAX_STEPS) as a Plotly figure dict with frames, shown at the
    newest step's verified tree (the end of the run, where a student expects a finished run to be; issue 24); None
    when no step drafted a tree. An `overview` is drawn for a narrow column."""
    shown_steps = tree_steps(steps)[-MAX_STEPS:]
    if not shown_steps:
        return None
    frames, labels, xs, ys, drawn = [], [], [1], [0.0], {id(s) for s in shown_steps}
    deepest = max(max(depths(s.tree.parents), default=0) for s in shown_steps) + 1  # the target's own token too
    cut = max(4, SIZES[overview]["width"] // ((deepest + 1) * SIZES[overview]["char"]))  # a label fits its column
    opened = shown_steps[-1]
    root = started.prompt_texts[-1] if started and started.prompt_texts else "root"
    for step in steps:  # a step's root is the newest token committed before it
        if id(step) in drawn:
            pos = positions(step)
            xs += [x for x, _ in pos.values()]
            ys += [y for _, y in pos.values()]
            rounds = sorted(set(step.tree.rounds))
            for upto in [*rounds, None]:
                frames.append(dict(name=f"{step.index}:{'verified' if upto is None else upto}",
                                   data=_frame(step, pos, root, upto, cut), layout=dict(title=dict(
                                       text=_title(step, upto, len(rounds), overview)))))
                labels.append(f"step {step.number} · " + ("verified" if upto is None else f"round {upto + 1}"))
        root = step.texts[-1] if step.texts else root
    at = next(i for i, f in enumerate(frames) if f["name"] == f"{opened.index}:verified")
    data = _traces("q (draft)" if shown_steps[-1].draft_forwards else "q (recycled)", overview)
    for trace, now in zip(data, frames[at]["data"]):
        _merge(trace, now)
    return dict(data=data, layout=_plot_layout(frames, labels, at, (max(xs), min(ys), max(ys)), overview),
                frames=frames)


# the figure's sizes: in a wide panel, and as an overview in a narrow column
SIZES = {False: dict(row=30, least=380, bottom=130, title=15, ticks=12, width=900, char=8),
         True: dict(row=24, least=320, bottom=130, title=13, ticks=9, width=420, char=7)}  # width, char: about, px


def _plot_layout(frames: list[dict], labels: list[str], at: int, extent: tuple, overview: bool) -> dict:
    """Axes that hold every frame's tree (`extent`: deepest depth, lowest and highest row), the slider over all
    frames (at frame `at`) and Play/Pause."""
    size, (deepest, low, high) = SIZES[overview], extent
    return dict(
        height=int(min(900, max(size["least"], 170 + size["row"] * (high - low)))),
        margin=dict(l=20, r=10, t=50, b=size["bottom"]), paper_bgcolor="white", plot_bgcolor="white",
        showlegend=False, hovermode="closest", dragmode="pan",
        font=dict(family="system-ui, sans-serif", size=12, color="#374151"),
        title=dict(text=frames[at]["layout"]["title"]["text"], x=0.01, y=0.98, yanchor="top",
                   font=dict(size=size["title"])),
        xaxis=dict(range=[-0.9, deepest + 1], tickvals=list(range(deepest + 1)), showgrid=False, zeroline=False,
                   ticktext=["root", "depth 1", *(str(d) for d in range(2, deepest + 1))], side="top",
                   tickfont=dict(color="#9ca3af", size=size["ticks"]), tickangle=0),
        yaxis=dict(range=[low - 0.8, high + 0.8], visible=False),
        **player(frames, labels, at))


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def tree_html(started: RunStarted | None, steps: list[Step], overview: bool = False) -> str | None:
    """The tree figure as HTML for a gr.HTML running static/player.js: a caption, the legend, a box Plotly draws in,
    and the figure's JSON (escaped) as hidden text."""
    fig = tree_figure(started, steps, overview)
    if fig is None:
        return None
    trees = tree_steps(steps)
    shown_count = min(len(trees), MAX_STEPS)
    keys = [f'<span class="pg-key pg-key-{s}"><span class="pg-dash"></span><span class="pg-dot"></span>{label}'
            f'</span>' for s, label in LEGEND]
    keys.append('<span class="pg-key pg-key-target"><span class="pg-dash"></span>' + "".join(
        f'<span class="pg-diamond" style="background:{COLOURS[s][0]}"></span>' for s in (REPLACEMENT, BONUS))
        + "the target's own token: replacement or bonus</span>")
    keys.append('<span class="pg-key">node colour: q · hover a node for q and p</span>')
    since = f"the last {shown_count} of {len(trees)}" if shown_count < len(trees) else f"all {len(trees)}"
    cap = (f'<div class="pg-cap"><b>Draft tree</b> · ▶ Play or drag the slider to watch {since} tree steps grow '
           f'round by round, then get verified</div>')
    return (f'<div class="pg-tree" data-steps="{shown_count}" data-frames="{len(fig["frames"])}">{cap}'
            f'<div class="pg-legend">{"".join(keys)}</div>{animated_html(fig, "pg-tree-plot")}</div>')


def tree_size_figure(steps: list[Step]) -> go.Figure | None:
    """Per step: the nodes the drafter made, those the target verified (the rest were pruned), and how many of
    them it accepted."""
    trees = tree_steps(steps)
    if not trees:
        return None
    fig = new_figure()
    x = [s.number for s in trees]
    for name, counts, colour in (("drafted (pruned included)", [len(s.tree.tokens) for s in trees], "#e2e8f0"),
                                 ("verified by the target", [s.proposed for s in trees], "#93c5fd"),
                                 ("accepted path", [s.accepted for s in trees], GREEN)):
        fig.add_bar(x=x, y=counts, name=name, marker_color=colour, hovertemplate=f"{name}: %{{y}}<extra></extra>")
    fig.update_layout(barmode="overlay", bargap=0.15)
    fig.update_yaxes(rangemode="tozero")
    return style_figure(fig, "Tree size vs accepted length", "step", "nodes", False)


def depth_acceptance(steps: list[Step]) -> list[tuple[int, int, int]]:
    """(depth d, tree steps whose verified tree reached d, those of them whose accepted path reached d)."""
    reached: dict[int, list[int]] = {}
    for s in tree_steps(steps):
        verified = [d for d, state in zip(depths(s.tree.parents), s.tree.states) if state != NODE_PRUNED]
        for d in range(1, max(verified, default=0) + 1):
            reached.setdefault(d, [0, 0])
            reached[d][0] += 1
            reached[d][1] += s.accepted >= d
    return [(d, n, a) for d, (n, a) in sorted(reached.items())]


def depth_acceptance_figure(steps: list[Step]) -> go.Figure | None:
    counts = depth_acceptance(steps)
    if not counts:
        return None
    fig = new_figure()
    fig.add_bar(x=[d for d, _, _ in counts], y=[a / n for _, n, a in counts], name="accepted path reached it",
                marker_color=GREEN, text=[f"{a}/{n}" for _, n, a in counts], textposition="outside",
                customdata=[[n, a] for _, n, a in counts],
                hovertemplate="depth %{x}: the accepted path got this deep in %{customdata[1]} of the "
                              "%{customdata[0]} steps whose verified tree did (%{y:.0%})<extra></extra>")
    style_figure(fig, "Acceptance by depth", "depth in the tree", "share of steps", False)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    fig.update_xaxes(dtick=1)
    return fig
