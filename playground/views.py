"""What a person sees of a run, built from its typed events alone (no Gradio here).

The live view and the History replay both call `run_view`, so a replayed run at step k looks exactly like the live
run did after k steps. Model text is untrusted: every token goes through `html.escape`.
The views of how a run drafts (draft length, confidence vs threshold, layer stack, copied spans) are in
`views_drafts`, those of draft trees in `views_tree`; `run_view` gives None for each that does not apply, and the
app hides it.
"""

from __future__ import annotations

import html
from itertools import accumulate
from typing import Iterable, Iterator, NamedTuple

import plotly.graph_objects as go

from playground.events import ACCEPTED, BONUS, REPLACEMENT, SOURCES, TARGET, RunFinished, RunStarted, Stats, Step
from playground.methods import used

# (strong, light) colour per token source: chips, legend and charts all use these.
COLOURS = {TARGET: ("#4f6d8f", "#e3eaf3"), ACCEPTED: ("#15803d", "#d9f7e3"),
           REPLACEMENT: ("#c2410c", "#ffe6d1"), BONUS: ("#7e22ce", "#f1e4ff")}
LABELS = {TARGET: "target (autoregressive)", ACCEPTED: "accepted draft", REPLACEMENT: "replacement",
          BONUS: "bonus"}
PROMPT_SHOWN_CHARS = 600
NEWLINE = '<span class="pg-ws">↵</span>'

# the chip colours of each token source, made from COLOURS (the charts' colours); the rest of the style sheet is
# static/playground.css
SOURCE_CSS = "\n".join(f".pg-chip.pg-{s}{{background:{light};border-bottom:2px solid {strong}}}"
                       for s, (strong, light) in COLOURS.items())


class RunView(NamedTuple):
    status: str
    chips: str
    step: str
    stats: str
    accepted: go.Figure
    progress: go.Figure
    # views_drafts: None where the view does not apply to the run (the app hides it)
    drafts: go.Figure | None = None
    confidence: go.Figure | None = None
    layers: str | None = None
    copies: str | None = None
    # views_tree: the draft tree of tree methods, animated, and its two charts
    tree: str | None = None
    tree_size: go.Figure | None = None
    depth_acceptance: go.Figure | None = None
    # views_diffusion: the canvas of diffusion runs, animated
    canvas: str | None = None
    # views_theory: acceptance by draft position (chains) or sibling rank (trees), what theory rests on
    theory: go.Figure | None = None


OPTIONAL = ("drafts", "confidence", "layers", "copies", "tree", "tree_size", "depth_acceptance", "canvas", "theory")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _prob(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def _chip(text: str, classes: str, title: str, step: int | None = None, breaks: bool = True) -> str:
    """One token as a chip, escaped. Newlines show as ↵; with `breaks` they also break the line, outside the chip
    (text after a newline goes on in a continuation chip without data-step, so each token is counted once)."""
    attrs = f'class="pg-chip {classes}" title="{html.escape(title)}"'
    data = f' data-step="{step}"' if step is not None else ""
    if text == "":
        return f'<span {attrs}{data}><span class="pg-ws">∅</span></span>'
    if not breaks:
        return f'<span {attrs}{data}>{html.escape(text).replace(chr(10), NEWLINE)}</span>'
    parts = text.split("\n")
    pieces = [f"{html.escape(p)}{NEWLINE if i < len(parts) - 1 else ''}" for i, p in enumerate(parts)]
    out = f"<span {attrs}{data}>{pieces[0]}</span>"
    return out + "".join(f"\n<span {attrs}>{p}</span>" if p else "\n" for p in pieces[1:])


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
            title = f"step {step.number} · {LABELS.get(source, source)}\np (target) = {_prob(step.p[i])}" \
                    f"\nq (draft) = {_prob(step.q[i])}"
            chips.append(_chip(text, f"pg-{source}{newest}", title, step.index))
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
    drafted = []
    for i, text in enumerate(step.drafted_texts or [str(t) for t in step.drafted]):
        state = "pg-accepted" if i < step.accepted else "pg-rejected" if i == step.accepted else "pg-unverified"
        title = f"drafted #{i + 1}\nq (draft) = {_prob(step.draft_q[i])}\np (target) = {_prob(step.draft_p[i])}"
        drafted.append(_chip(text, state, title, breaks=False))
    if step.tree_tokens:  # `drafted` holds the path the target walked down the tree, then the node it turned down
        lead, verdict = "the target walked the tree", f"accepted {step.accepted} of its {step.proposed} verified nodes"
    else:
        lead, verdict = "draft proposed", f"accepted {step.accepted} of {len(step.drafted)} (gamma {step.gamma})"
    return (f'<div class="pg-step">{head}{lead} {"".join(drafted)} · {verdict} → committed '
            f'{_committed(step)} · {timing}</div>')


def _committed(step: Step) -> str:
    return "".join(_chip(step.texts[i] if i < len(step.texts) else str(t), f"pg-{step.sources[i]}",
                         f"{LABELS.get(step.sources[i])}\np (target) = {_prob(step.p[i])}", breaks=False)
                   for i, t in enumerate(step.tokens))


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Where two outputs first differ (the shorter one's length when one extends the other); None: identical."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def run_stats(source: RunFinished | Stats | list[Step]) -> Stats:
    """Stats of a finished run, or of the steps so far (time = the steps' own time, as the recorder counts it)."""
    if isinstance(source, RunFinished):
        return source.stats
    if isinstance(source, Stats):
        return source
    steps = list(source)
    return Stats.from_steps(steps, sum(s.draft_s + s.target_s + s.other_s for s in steps))


def stats_html(source: RunFinished | Stats | list[Step]) -> str:
    s = run_stats(source)
    rate = "—" if s.acceptance_rate is None else f"{s.acceptance_rate:.0%}"
    cards = [("tokens_per_s", f"{s.tokens_per_s:.1f}", f"tokens / s (over {s.wall_s:.2f} s)"),
             ("new_tokens", f"{s.new_tokens}", "new tokens"),
             ("target_forwards", f"{s.target_forwards}", "target forwards"),
             ("mean_accepted", f"{s.mean_accepted:.2f}", "mean accepted (tokens per target forward)"),
             ("acceptance_rate", rate,
              "acceptance rate (accepted / drafted, tokens drafted past a rejection included)"),
             ("saved", f"{s.new_tokens - s.target_forwards}", "target forwards saved vs autoregressive"),
             ("draft_s", f"{s.draft_s:.2f} s", f"draft time ({s.draft_forwards} forwards)"),
             ("verify_s", f"{s.verify_s:.2f} s", "verify time (target forwards)")]
    return cards_html(cards)


def cards_html(cards: list[tuple[str, str, str]], classes: str = "") -> str:
    """Stat cards: (key, value, label) each, in a grid."""
    return f'<div class="{" ".join(["pg-stats", classes]).strip()}">' + "".join(
        f'<div class="pg-stat" data-stat="{key}"><b>{value}</b><small>{label}</small></div>'
        for key, value, label in cards) + "</div>"


WARMING_UP = ('<div class="pg-status pg-empty" data-status="warming">Loading the models and warming up: a short '
              'unrecorded run first, so the timed one does not pay for first calls…</div>')


def status_html(started: RunStarted | None, finished: RunFinished | None = None, position: str = "",
                empty: str = "No run yet: write a prompt and press Generate.") -> str:
    if started is None:
        return f'<div class="pg-status pg-empty">{empty}</div>'
    state = finished.status if finished else "running"
    models = html.escape(started.model + (f" + draft {started.draft}" if started.draft else ""))
    settings = " · ".join(f"{k}={v}" for k, v in started.settings.items()
                          if k != "stop_at_eos" and used(started.method, k, started.settings))
    parts = [f'<span class="pg-badge {html.escape(state)}" data-status="{html.escape(state)}">{html.escape(state)}'
             f'</span>', f"<b>run #{started.run_id}</b>", html.escape(started.method), models,
             f"<small>{html.escape(settings)}</small>"]
    if position:
        parts.append(f"<b>{html.escape(position)}</b>")
    error = f'<div class="pg-error">{html.escape(finished.error)}</div>' if finished and finished.error else ""
    return '<div class="pg-status">' + "".join(f"<span>{p}</span>" for p in parts) + "</div>" + error


def error_html(message: str) -> str:
    return f'<div class="pg-error" data-error="1"><b>Cannot run:</b> {html.escape(message)}</div>'


def _figure() -> go.Figure:
    return go.Figure(layout=dict(template="none"))  # styled by hand in _layout: a full template costs ~25 ms


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, empty: bool) -> go.Figure:
    if empty:
        fig.add_annotation(text="no steps yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(size=14, color="#9ca3af"))
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=15)), height=380, paper_bgcolor="white",
        plot_bgcolor="white", margin=dict(l=60, r=20, t=50, b=135),
        font=dict(family="system-ui, sans-serif", size=12, color="#374151"),
        legend=dict(orientation="h", x=0, y=-0.36, yanchor="top", traceorder="normal"), showlegend=True,
        hovermode="x unified")
    axis = dict(gridcolor="#e5e7eb", zerolinecolor="#d1d5db", linecolor="#9ca3af", showline=True)
    fig.update_xaxes(title_text=x_title, **axis)
    fig.update_yaxes(title_text=y_title, **axis)
    xs = [x for trace in fig.data for x in (getattr(trace, "x", None) or ()) if isinstance(x, (int, float))]
    if xs and max(xs) - min(xs) <= 10:  # steps, forwards, depths are whole: no ticks at -0.4 ... 0.4 for one step
        fig.update_xaxes(dtick=1)
    return fig


def accepted_figure(steps: list[Step]) -> go.Figure:
    """Tokens committed per step, stacked by source, with the draft length gamma asked for."""
    fig = _figure()
    x = [s.number for s in steps]
    for source in SOURCES:
        counts = [s.sources.count(source) for s in steps]
        if any(counts):
            fig.add_bar(x=x, y=counts, name=LABELS[source], marker_color=COLOURS[source][0])
    if any(s.gamma for s in steps):
        drafted = "draft tree nodes" if any(s.tree_tokens for s in steps) else "gamma (drafted)"
        fig.add_scatter(x=x, y=[s.gamma for s in steps], name=drafted, mode="lines",
                        line=dict(color="#111827", dash="dot", shape="hvh", width=1.5))
    fig.update_layout(barmode="stack", bargap=0.15)
    fig.update_yaxes(rangemode="tozero", dtick=1 if max((len(s.tokens) for s in steps), default=1) <= 8 else None)
    return _layout(fig, "Tokens committed per step", "step (one target verification)", "tokens", not steps)


def progress_figure(steps: list[Step], reference: str = "autoregressive (1 token / forward)",
                    title: str = "Tokens vs target forward passes") -> go.Figure:
    """Cumulative tokens against cumulative target forwards; `reference` (autoregressive decoding) is the
    diagonal."""
    forwards = [0, *accumulate(s.target_forwards for s in steps)]
    tokens = [0, *accumulate(len(s.tokens) for s in steps)]
    fig = _figure()
    end = max(forwards[-1], 1)
    fig.add_scatter(x=[0, end], y=[0, end], name=reference, mode="lines",
                    line=dict(color="#9ca3af", dash="dash"))
    fig.add_scatter(x=forwards, y=tokens, name="this run", mode="lines+markers" if len(steps) <= 60 else "lines",
                    line=dict(color=COLOURS[ACCEPTED][0], width=2.5), marker=dict(size=5))
    fig.update_xaxes(rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "target forward passes", "tokens committed", not steps)


def run_so_far(events: Iterable) -> Iterator[tuple[RunStarted | None, list[Step], RunFinished | None]]:
    """After each of a run's events: the run so far, as run_view takes it (the steps list grows in place)."""
    started, steps, finished = None, [], None
    for event in events:
        if isinstance(event, RunStarted):
            started = event
        elif isinstance(event, Step):
            steps.append(event)
        elif isinstance(event, RunFinished):
            finished = event
        yield started, steps, finished


def run_view(started: RunStarted | None, steps: list[Step], finished: RunFinished | None = None,
             total: int | None = None) -> RunView:
    """Everything shown for a run after `steps`: live (finished once it ends) or replay (`total` = all its steps).

    In a replay stopped before the last step the stats come from the steps shown, as they did live. A diffusion
    run shows its canvas, its text in position order and its own two charts instead of the drafting views.
    """
    from playground import theory, views_diffusion as dlm, views_drafts as drafts, views_theory, \
        views_tree as trees  # they use helpers here
    partial = total is not None and len(steps) < total
    position = f"step {len(steps)} of {total}" if total is not None else ""
    stats_source = finished if finished is not None and not partial else steps
    prompt = started.prompt if started else None
    if dlm.diffusion_steps(started, steps):
        done = finished is not None and not partial
        return RunView(status_html(started, finished, position), dlm.text_html(started, steps, done),
                       dlm.step_html(steps[-1] if steps else None), stats_html(stats_source),
                       dlm.commits_figure(steps), dlm.forwards_figure(steps),
                       canvas=dlm.canvas_html(started, steps, done))
    prediction = theory.predict(steps)
    return RunView(status_html(started, finished, position), chips_html(steps, prompt),
                   step_html(steps[-1] if steps else None), stats_html(stats_source),
                   accepted_figure(steps), views_theory.add_theory_line(progress_figure(steps), prediction),
                   drafts.draft_length_figure(steps), drafts.confidence_figure(steps), drafts.layer_stack_html(steps),
                   drafts.copy_html(started, steps), trees.tree_html(started, steps), trees.tree_size_figure(steps),
                   trees.depth_acceptance_figure(steps), theory=views_theory.theory_figure(prediction))
