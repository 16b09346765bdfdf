"""The graph of a DAG run (methods `dag` and `gad`), drawn from its Step events alone (no Gradio here).

- `dag_figure`: the graph a DA-Transformer built in its one parallel pass, as a Plotly figure dict: vertices left to
  right (x = vertex index), labelled with the token they emit on the decoded path (elsewhere their likeliest one),
  sized by the probability that a path passes through them; transitions as lines whose width and opacity grow with
  their probability; the decoded path on the middle row, thick and in its own colour. For gad the path is the draft:
  its vertices say whether the autoregressive verifier accepted the token each one drafted.
- `dag_html`: that figure for a gr.HTML running static/dag.js: two sliders prune vertices (by passing probability) and
  transitions (by probability) in the browser, and clicking a vertex fills the details box beside the plot.
- `drafts_html`: gad's drafts, step by step, each drafted token accepted or rejected (views.step_html).
The DAG tab's four runs side by side are in `playground.compare.dag`.

Model text is untrusted: labels go through views.player.shown, details through html.escape, and the figure's JSON is
escaped again inside the HTML (views.player.animated_html).
"""

from __future__ import annotations

import html

from playground.events import ACCEPTED, DAG, RunStarted, Step
from playground.views.chain import step_html
from playground.views.common import COLOURS, clip, fmt_prob
from playground.views.player import animated_html, shown

START, PATH, REJECTED, UNVERIFIED, OFF = "start", "path", "rejected", "unverified", "off"
LOOK = {START: "#111827", PATH: "#4f46e5", ACCEPTED: COLOURS[ACCEPTED][0], REJECTED: "#b91c1c",
        UNVERIFIED: "#9ca3af", OFF: "#cbd5e1"}  # vertex fill per state
ROLE = {START: "the start: every path begins here", PATH: "on the decoded path",
        ACCEPTED: "on the draft path: the verifier accepted its token",
        REJECTED: "on the draft path: the verifier rejected its token here",
        UNVERIFIED: "on the draft path, after the rejection: not kept", OFF: "not on the decoded path"}
LANES = (1, -1, 2, -2)  # rows of the vertices off the path, in turn, so neighbouring labels do not collide
# (lowest probability, line width, opacity) of each trace of transitions off the path
BUCKETS = ((0.65, 4.5, 0.8), (0.35, 3.0, 0.65), (0.15, 2.0, 0.5), (0.05, 1.2, 0.35), (0.0, 0.6, 0.25))
EDGE, SELECTED = "#475569", "#f59e0b"  # their colour; the ring around the clicked vertex
LABEL_CHARS = 10
STRONGEST = 3       # incoming and outgoing transitions listed in a vertex's details
PX_PER_VERTEX = 28  # the plot scrolls sideways rather than squeeze labels together
DRAFT_ROWS = 12     # gad steps listed


def graph_step(steps: list[Step]) -> Step | None:
    """The step that carries the graph: a dag run's only step, gad's first."""
    return next((s for s in steps if s.kind == DAG), None)


def states(step: Step) -> list[str]:
    """Each vertex's state: the start, on the decoded path (gad: its drafted token accepted, rejected, or after
    the rejection), or off the path."""
    out = [OFF] * len(step.dag.top)
    out[0] = START
    for i, vertex in enumerate(step.dag.path[1:]):
        if not step.drafted:
            out[vertex] = PATH
        else:
            out[vertex] = ACCEPTED if i < step.accepted else REJECTED if i == step.accepted else UNVERIFIED
    return out


def labels(step: Step) -> list[str]:
    """Each vertex's label: the token it emits on the path (gad: the token it drafted), else its likeliest one."""
    out = [texts[0] if texts else "" for texts in step.dag.top_texts]
    emitted = step.drafted_texts if step.drafted else step.texts
    out[0] = "<s>"
    for vertex, text in zip(step.dag.path[1:], emitted):
        out[vertex] = text
    return out


def passing(step: Step) -> list[float]:
    """Each vertex's probability that a path (drawn by the transitions) passes through it."""
    return [step.dag.passing[j] if j < len(step.dag.passing) else 0.0 for j in range(len(step.dag.top))]


def transitions(step: Step) -> list[list]:
    """The recorded transitions that go forward: a path only moves to later vertices (the last vertex has no
    successor, so whatever its row of the transition matrix holds is not a transition)."""
    return [e for e in step.dag.edges if e[0] < e[1]]


def rows(size: int, path: list[int]) -> list[int]:
    """The row of each vertex: the path's on 0, the others on LANES in turn (a lane's vertices at least 4 apart)."""
    on, out, k = set(path), [], 0
    for j in range(size):
        out.append(0 if j in on else LANES[k % len(LANES)])
        k += j not in on
    return out


def _arc(a: tuple[int, int], b: tuple[int, int]) -> tuple[list, list]:
    """Points of the line from vertex a to vertex b: straight, or, between two vertices of one row with others
    between them, a low arc (a parabola) over them, away from the middle row and below the next row."""
    (x0, y0), (x1, y1) = a, b
    span = x1 - x0
    if y0 != y1 or span <= 1:
        return [x0, x1], [y0, y1]
    lift = min(0.2 + 0.03 * span, 0.42) * (1 if y0 >= 0 else -1)
    ts = [i / 10 for i in range(11)]
    return ([round(x0 + t * span, 3) for t in ts], [round(y0 + 4 * t * (1 - t) * lift, 3) for t in ts])


def _edge_traces(step: Step, row: list[int]) -> list[dict]:
    """The transitions off the path in BUCKETS by probability (one trace each: Plotly gives a trace one width),
    then the path's own. Every point carries [from, to, probability] as customdata, so static/dag.js prunes whole
    lines."""
    path = list(zip(step.dag.path, step.dag.path[1:]))
    probability = {(a, b): p for a, b, p in transitions(step)}
    traces = [dict(type="scatter", meta="edges", uid=f"edges-{low:g}", mode="lines", x=[], y=[], customdata=[],
                   hoverinfo="skip", opacity=alpha, line=dict(color=EDGE, width=width))
              for low, width, alpha in reversed(BUCKETS)]
    traces.append(dict(type="scatter", meta="path", uid="path", mode="lines", x=[], y=[], customdata=[],
                       hoverinfo="skip", line=dict(color=LOOK[PATH], width=5)))
    bucket = lambda p: traces[len(BUCKETS) - 1 - next(i for i, b in enumerate(BUCKETS) if p >= b[0])]  # noqa: E731
    lines = [(e, p, bucket(p)) for e, p in sorted(probability.items()) if e not in path]
    for (a, b), p, trace in lines + [(e, probability.get(e, 0.0), traces[-1]) for e in path]:
        xs, ys = _arc((a, row[a]), (b, row[b]))
        trace["x"] += [*xs, None]
        trace["y"] += [*ys, None]
        trace["customdata"] += [[a, b, p]] * (len(xs) + 1)
    return traces


def _vertex_trace(step: Step, row: list[int], label: list[str], state: list[str]) -> dict:
    """One marker per vertex, sized by its passing probability, coloured by its state, labelled above (below, on
    the lower rows and for every other path vertex, so neighbours on the path alternate)."""
    size, side = len(step.dag.top), {}
    for i, vertex in enumerate(step.dag.path):
        side[vertex] = "top center" if i % 2 == 0 else "bottom center"
    through = passing(step)
    font = dict(family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", size=12, color="#111827",
                shadow=", ".join(f"{a}px {b}px 0 white" for a in (-2, 0, 2) for b in (-2, 0, 2) if a or b))
    return dict(type="scatter", meta="vertices", uid="vertices", mode="markers+text", cliponaxis=False,
                x=list(range(size)), y=row, text=[shown(short(t)) for t in label],
                textposition=[side.get(j, "top center" if row[j] > 0 else "bottom center") for j in range(size)],
                textfont=font,
                customdata=[[j, round(through[j], 4), ROLE[state[j]], shown(label[j])] for j in range(size)],
                marker=dict(size=[round(8 + 18 * p ** 0.5, 1) for p in through],
                            color=[LOOK[s] for s in state], line=dict(color="white", width=1.5)),
                hovertemplate="<b>vertex %{customdata[0]}</b> · %{customdata[3]}<br>passing probability "
                              "%{customdata[1]:.3f}<br>%{customdata[2]}<br>click for its top tokens<extra></extra>")


def short(text: str) -> str:
    return clip(text, LABEL_CHARS)


def dag_figure(started: RunStarted | None, steps: list[Step]) -> dict | None:
    """The graph as a Plotly figure dict (data, layout, config) plus `dag`: what static/dag.js needs to prune it and to
    show a vertex's details. None when no step carries a graph."""
    step = graph_step(steps)
    if step is None:
        return None
    size = len(step.dag.top)
    row, label, state = rows(size, step.dag.path), labels(step), states(step)
    selected = dict(type="scatter", meta="selected", uid="selected", mode="markers", x=[], y=[], hoverinfo="skip",
                    marker=dict(symbol="circle-open", size=40, color=SELECTED, line=dict(width=3)))
    data = [*_edge_traces(step, row), _vertex_trace(step, row, label, state), selected]
    every = 1 if size <= 40 else 5
    layout = dict(height=int(190 + 62 * (max(row) - min(row))), margin=dict(l=24, r=24, t=34, b=34),
                  paper_bgcolor="white", plot_bgcolor="white", showlegend=False, hovermode="closest",
                  dragmode="pan", font=dict(family="system-ui, sans-serif", size=12, color="#374151"),
                  xaxis=dict(range=[-0.9, size - 0.1], tickvals=list(range(0, size, every)), showgrid=False,
                             zeroline=False, title=dict(text="vertex", font=dict(size=11, color="#9ca3af")),
                             tickfont=dict(size=10, color="#9ca3af")),
                  yaxis=dict(range=[min(row) - 0.75, max(row) + 0.75], visible=False, fixedrange=True))
    return dict(data=data, layout=layout, config=dict(displaylogo=False, responsive=True, modeBarButtonsToRemove=[
        "select2d", "lasso2d", "autoScale2d"]), dag=dict(
        path=step.dag.path, rows=row, passing=passing(step), edges=transitions(step),
        details=details_html(step, label, state)))


def details_html(step: Step, label: list[str], state: list[str]) -> list[str]:
    """Per vertex, what a click shows: its top tokens with their probabilities, its passing probability, its role,
    and its strongest incoming and outgoing transitions with the other end's token. Escaped here."""
    into: dict[int, list] = {}
    out_of: dict[int, list] = {}
    for a, b, p in transitions(step):
        out_of.setdefault(a, []).append((p, b))
        into.setdefault(b, []).append((p, a))
    esc = lambda text: html.escape(text) if text else "∅"  # noqa: E731

    def ends(edges: list, arrow: str) -> str:
        strongest = sorted(edges, key=lambda e: -e[0])[:STRONGEST]
        return "".join(f"<br>{arrow} vertex {v} <code>{esc(label[v])}</code> {fmt_prob(p)}" for p, v in strongest) \
            or "<br>none at least 0.01 likely"

    out, through = [], passing(step)
    for j, tops in enumerate(step.dag.top):
        texts = step.dag.top_texts[j] if j < len(step.dag.top_texts) else [str(t) for t in tops]
        table = "".join(f'<tr><td><code>{esc(t)}</code></td><td><span class="pg-dag-bar" style="width:{p * 80:.0f}px">'
                        f'</span> {fmt_prob(p)}</td></tr>' for t, p in zip(texts, step.dag.top_p[j]))
        out.append(f'<div data-vertex="{j}"><b>Vertex {j}</b> · <code>{esc(label[j])}</code><br>'
                   f'<small>{ROLE[state[j]]}</small><br>passing probability <b>{fmt_prob(through[j])}</b>'
                   f'<table data-top="{len(tops)}"><tr><th>top tokens</th><th>p</th></tr>{table}</table>'
                   f'<div data-in><b>strongest in</b>{ends(into.get(j, []), "from")}</div>'
                   f'<div data-out><b>strongest out</b>{ends(out_of.get(j, []), "to")}</div></div>')
    return out


def legend_html(step: Step) -> str:
    looks = [START, ACCEPTED, REJECTED, UNVERIFIED, OFF] if step.drafted else [START, PATH, OFF]
    names = {START: "vertex 0 (emits &lt;s&gt;)", PATH: "decoded path", ACCEPTED: "drafted, accepted by the verifier",
             REJECTED: "drafted, rejected", UNVERIFIED: "drafted after the rejection", OFF: "off the path"}
    keys = [f'<span class="pg-dag-key"><span class="pg-dot" style="background:{LOOK[s]}"></span>{names[s]}</span>'
            for s in looks]
    keys.append('<span class="pg-dag-key">size: passing probability · line width: transition probability · '
                'click a vertex for its top tokens</span>')
    return f'<div class="pg-legend">{"".join(keys)}</div>'


def dag_html(started: RunStarted | None, steps: list[Step]) -> str | None:
    """The graph for a gr.HTML running static/dag.js: a caption, the legend, the two prune sliders, the plot beside the
    details box, and, for gad, its drafts step by step. None when no step carries a graph."""
    fig = dag_figure(started, steps)
    if fig is None:
        return None
    step = graph_step(steps)
    size, edges = len(step.dag.top), len(transitions(step))
    what = "the draft the autoregressive model verified" if step.drafted else "the decoded path"
    cap = (f'<div class="pg-cap"><b>DAG</b> · {size} vertices built in one parallel pass · {what} visits '
           f'{len(step.dag.path)} of them</div>')
    slider = lambda name, text, low: (  # noqa: E731
        f'<label>{text} <input type="range" data-prune="{name}" min="{low}" max="1" step="0.01" value="{low}">'
        f'<output data-for="{name}">{low:.2f}</output></label>')
    controls = (f'<div class="pg-dag-controls">{slider("vertices", "hide vertices with passing probability below", 0)}'
                f'{slider("edges", "hide transitions below", 0.01)}<span class="pg-dag-count" '
                f'data-shown-vertices="{size}" data-shown-edges="{edges}">{size} of {size} vertices · {edges} of '
                f'{edges} transitions shown</span></div>')
    plot = (f'<div class="pg-dag-body"><div class="pg-dag-scroll"><div style="min-width:{PX_PER_VERTEX * size}px">'
            f'{animated_html(fig, "pg-dag-plot")}</div></div><div class="pg-dag-details">Click a vertex to see its '
            f'top tokens, its passing probability and its strongest transitions.</div></div>')
    drafts = drafts_html(steps) or ""
    return (f'<div class="pg-dag" data-vertices="{size}" data-edges="{edges}" data-path="{len(step.dag.path)}">'
            f'{cap}{legend_html(step)}{controls}{plot}{drafts}</div>')


def drafts_html(steps: list[Step]) -> str | None:
    """gad: each step's draft with the tokens the verifier accepted (green) and rejected (red); None for a run
    that drafted nothing."""
    drafted = [s for s in steps if s.drafted]
    if not drafted:
        return None
    accepted = sum(s.accepted for s in drafted)
    more = f'<div class="pg-note">… and {len(drafted) - DRAFT_ROWS} more</div>' if len(drafted) > DRAFT_ROWS else ""
    return (f'<div class="pg-dag-drafts" data-accepted="{accepted}"><div class="pg-cap"><b>Drafts verified</b> · '
            f'{accepted} of {sum(len(s.drafted) for s in drafted)} drafted tokens accepted over {len(drafted)} '
            f'verification{"s" if len(drafted) != 1 else ""}</div>'
            f'{"".join(step_html(s) for s in drafted[:DRAFT_ROWS])}{more}</div>')
