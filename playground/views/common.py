"""What every view shares: the colours and labels of token sources, token chips, stat cards, and the figure style."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET

# (strong, light) colour per token source: chips, legend and charts all use these.
COLOURS = {TARGET: ("#4f6d8f", "#e3eaf3"), ACCEPTED: ("#15803d", "#d9f7e3"),
           REPLACEMENT: ("#c2410c", "#ffe6d1"), BONUS: ("#7e22ce", "#f1e4ff")}


LABELS = {TARGET: "target (autoregressive)", ACCEPTED: "accepted draft", REPLACEMENT: "replacement",
          BONUS: "bonus"}


NEWLINE = '<span class="pg-ws">↵</span>'


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def fmt_prob(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def chip(text: str, classes: str, title: str, step: int | None = None, breaks: bool = True) -> str:
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


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Where two outputs first differ (the shorter one's length when one extends the other); None: identical."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def cards_html(cards: list[tuple[str, str, str]], classes: str = "") -> str:
    """Stat cards: (key, value, label) each, in a grid."""
    return f'<div class="{" ".join(["pg-stats", classes]).strip()}">' + "".join(
        f'<div class="pg-stat" data-stat="{key}"><b>{value}</b><small>{label}</small></div>'
        for key, value, label in cards) + "</div>"


def new_figure() -> go.Figure:
    return go.Figure(layout=dict(template="none"))  # styled by hand in style_figure: a full template costs ~25 ms


def style_figure(fig: go.Figure, title: str, x_title: str, y_title: str, empty: bool) -> go.Figure:
    if empty:
        fig.add_annotation(text="no steps yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(size=14, color="#9ca3af"))
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=15)), height=380, paper_bgcolor="white",
        plot_bgcolor="white", margin=dict(l=60, r=20, t=50, b=135),
        font=dict(family="system-ui, sans-serif", size=12, color="#374151"),
        legend=dict(orientation="h", x=0, y=-0.36, yanchor="top", traceorder="normal"), showlegend=True,
        hovermode="x unified", hoverlabel=dict(namelength=-1))  # whole trace names: Plotly cuts at 15 characters
    axis = dict(gridcolor="#e5e7eb", zerolinecolor="#d1d5db", linecolor="#9ca3af", showline=True)
    fig.update_xaxes(title_text=x_title, **axis)
    fig.update_yaxes(title_text=y_title, **axis)
    xs = [x for trace in fig.data for x in (getattr(trace, "x", None) or ()) if isinstance(x, (int, float))]
    if xs and max(xs) - min(xs) <= 10:  # steps, forwards, depths are whole: no ticks at -0.4 ... 0.4 for one step
        fig.update_xaxes(dtick=1)
    return fig
