"""The animation player every animated figure shares (draft trees, the diffusion canvas, the DAG): labels Plotly can
show safely, the Play/Pause and slider controls, and the HTML that static/player.js draws a figure from (gr.Plot
drops Plotly frames, so the figure travels as escaped JSON beside an empty box)."""

from __future__ import annotations

import html
import json

from playground.views.common import clip

FRAME_MS = 600       # Play: time per frame


WHITESPACE = {"\n": "↵", " ": "·", "\t": "⇥"}


def shown(text: str, cut: int | None = None) -> str:
    """A token as a Plotly label: its whitespace made visible (↵ newline, · space, ⇥ tab, ∅ nothing) and <, >, &
    escaped, so Plotly shows tags as text; quotes stay, as Plotly would show &quot; as it is. With `cut`, at most
    that many characters, the last an ellipsis (the hover shows the whole token)."""
    if not text:
        return "∅"
    visible = "".join(WHITESPACE.get(c, c) for c in text)
    return html.escape(visible if cut is None else clip(visible, cut), quote=False)


def player(frames: list[dict], labels: list[str], at: int) -> dict:
    """Layout of an animated figure's controls: Play/Pause under the plot on the left, the current frame's label on
    the right, and below them a slider over all `frames` (labelled, at frame `at`), the whole width: beside the
    buttons, a slider placed in fractions of the width ran under them in narrow panels. Needs about 130 px of
    bottom margin."""
    jump = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    play = dict(fromcurrent=True, frame=dict(duration=FRAME_MS, redraw=True), transition=dict(duration=0))
    return dict(
        sliders=[dict(x=0, len=1, pad=dict(t=50), active=at, y=0, yanchor="top", ticklen=2, tickcolor="#d1d5db",
                      font=dict(color="rgba(0,0,0,0)", size=8),
                      currentvalue=dict(prefix="", xanchor="right", font=dict(size=13, color="#111827")),
                      steps=[dict(label=label, method="animate", args=[[f["name"]], jump])
                             for label, f in zip(labels, frames)])],
        updatemenus=[dict(type="buttons", direction="left", x=0, y=0, xanchor="left", yanchor="top",
                          pad=dict(t=38), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], jump])])])


def animated_html(fig: dict, plot_class: str) -> str:
    """A box (of class `plot_class`) that static/player.js draws `fig` in, and the figure's JSON, escaped, as hidden
    text beside it."""
    data = html.escape(json.dumps(fig, separators=(",", ":")), quote=False)
    return f'<div class="pg-anim-plot {plot_class}"></div><div class="pg-anim-data" hidden>{data}</div>'
