"""The views of a chain of drafted tokens: the text as chips coloured by source, the latest step told in full, tokens
committed per step and tokens against target forwards."""

from __future__ import annotations

import html
from itertools import accumulate

import plotly.graph_objects as go

from playground.events import ACCEPTED, SOURCES, TREE, Step
from playground.views.common import (
    COLOURS,
    LABELS,
    chip,
    fmt_prob,
    new_figure,
    style_figure,
)

PROMPT_SHOWN_CHARS = 600


def legend_html() -> str:
    items = "".join(f'<span class="pg-chip pg-{s}">{LABELS[s]}</span>' for s in SOURCES)
    return (f'<div class="pg-legend">{items}<span class="pg-chip pg-new">latest step</span>'
            f'<span>hover a token for p (target) and q (draft)</span></div>')


def chips_html(steps: list[Step], prompt: str | None = None) -> str:
    """The generated text as chips, one per committed token, coloured by source; the newest step is outlined."""
    chips = []
    for step in steps:
        newest = " pg-new" if step is steps[-1] else ""
        for i, source in enumerate(step.sources):
            text = step.texts[i] if i < len(step.texts) else f"<id {step.tokens[i]}>"
            title = f"step {step.number} · {LABELS.get(source, source)}\np (target) = {fmt_prob(step.p[i])}" \
                    f"\nq (draft) = {fmt_prob(step.q[i])}"
            chips.append(chip(text, f"pg-{source}{newest}", title, step.index))
    shown = ""
    if prompt:
        cut = prompt[-PROMPT_SHOWN_CHARS:]
        shown = f'<span class="pg-prompt">{"…" if len(cut) < len(prompt) else ""}{html.escape(cut)}</span>'
    body = "".join(chips) or '<span class="pg-empty"> (no tokens yet)</span>'
    return f'{legend_html()}<div class="pg-panel">{shown}{body}</div>'


def step_html(step: Step | None) -> str:
    """The latest step told in full: what was drafted, where the target rejected it, what it committed instead."""
    if step is None:
        return '<div class="pg-step pg-empty">No step yet.</div>'
    timing = f"draft {step.draft_s * 1e3:.1f} ms · verify {step.target_s * 1e3:.1f} ms"
    head = f"<b>Step {step.number}</b> · "
    if not step.drafted:
        return f'<div class="pg-step">{head}one target forward → {_committed(step)} · {timing}</div>'
    if step.kind == TREE:  # `drafted` holds the path the target walked down the tree, then the node it turned down
        lead, verdict = "the target walked the tree", f"accepted {step.accepted} of its {step.proposed} verified nodes"
    else:
        lead, verdict = "draft proposed", f"accepted {step.accepted} of {len(step.drafted)} (gamma {step.gamma})"
    return (f'<div class="pg-step">{head}{lead} {drafted_chips(step)} · {verdict} → committed '
            f'{_committed(step)} · {timing}</div>')


def drafted_chips(step: Step) -> str:
    """The step's drafted tokens as chips: accepted, rejected (the first the target turned down), not verified."""
    drafted = []
    for i, text in enumerate(step.drafted_texts or [str(t) for t in step.drafted]):
        state = "pg-accepted" if i < step.accepted else "pg-rejected" if i == step.accepted else "pg-unverified"
        title = f"drafted #{i + 1}\nq (draft) = {fmt_prob(step.draft_q[i])}\np (target) = {fmt_prob(step.draft_p[i])}"
        drafted.append(chip(text, state, title, breaks=False))
    return "".join(drafted)


def _committed(step: Step) -> str:
    return "".join(chip(step.texts[i] if i < len(step.texts) else str(t), f"pg-{step.sources[i]}",
                         f"{LABELS.get(step.sources[i])}\np (target) = {fmt_prob(step.p[i])}", breaks=False)
                   for i, t in enumerate(step.tokens))


def accepted_figure(steps: list[Step]) -> go.Figure:
    """Tokens committed per step, stacked by source, with the draft length gamma asked for."""
    fig = new_figure()
    x = [s.number for s in steps]
    for source in SOURCES:
        counts = [s.sources.count(source) for s in steps]
        if any(counts):
            fig.add_bar(x=x, y=counts, name=LABELS[source], marker_color=COLOURS[source][0])
    if any(s.gamma for s in steps):
        drafted = "draft tree nodes" if any(s.kind == TREE for s in steps) else "gamma (drafted)"
        fig.add_scatter(x=x, y=[s.gamma for s in steps], name=drafted, mode="lines",
                        line=dict(color="#111827", dash="dot", shape="hvh", width=1.5))
    fig.update_layout(barmode="stack", bargap=0.15)
    fig.update_yaxes(rangemode="tozero", dtick=1 if max((len(s.tokens) for s in steps), default=1) <= 8 else None)
    return style_figure(fig, "Tokens committed per step", "step (one target verification)", "tokens", not steps)


def progress_figure(steps: list[Step], reference: str = "autoregressive (1 token / forward)",
                    title: str = "Tokens vs target forward passes") -> go.Figure:
    """Cumulative tokens against cumulative target forwards; `reference` (autoregressive decoding) is the
    diagonal."""
    forwards = [0, *accumulate(s.target_forwards for s in steps)]
    tokens = [0, *accumulate(len(s.tokens) for s in steps)]
    fig = new_figure()
    end = max(forwards[-1], 1)
    fig.add_scatter(x=[0, end], y=[0, end], name=reference, mode="lines",
                    line=dict(color="#9ca3af", dash="dash"))
    fig.add_scatter(x=forwards, y=tokens, name="this run", mode="lines+markers" if len(steps) <= 60 else "lines",
                    line=dict(color=COLOURS[ACCEPTED][0], width=2.5), marker=dict(size=5))
    fig.update_xaxes(rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    return style_figure(fig, title, "target forward passes", "tokens committed", not steps)
