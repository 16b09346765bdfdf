"""What a diffusion run (method `diffusion`) looks like, drawn from its events alone (no Gradio here).

- `canvas_figure` / `canvas_html`: the canvas of generated positions, one animation frame per step (views_tree's
  `player`; static/player.js draws it): still-masked cells grey with the model's current guess written faintly,
  committed tokens coloured by their confidence, the cells the step committed outlined, each block framed.
- `commits_figure`: tokens committed per step; `forwards_figure`: tokens against forward passes, next to one
  token per forward.
- `text_html`: the text in position order, masks included; `step_html`: the latest step in words.

Each returns None for runs that are not diffusion runs. Model text is untrusted: labels and hovers go through
`views.player.shown` (html.escape), and the figure's JSON is escaped again inside the HTML.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from playground.events import CANVAS, RunStarted, Step
from playground.views.chain import progress_figure
from playground.views.common import chip, fmt_prob, new_figure, style_figure
from playground.views.player import animated_html, player, shown

COLUMNS = 16          # cells per row (fewer when a block is shorter: then each block is a row)
FRAME_CELLS = 8192    # frames x cells the figure carries at most (each frame holds the whole canvas)
MAX_FRAMES = 64
LABEL_CHARS = 5       # a cell shows this much of its token, whitespace drawn (the hover shows all of it)
MASK, INK, FAINT, OUTLINE = "#e5e7eb", "#111827", "#6b7280", "#111827"
SCALE = [[0, "#fecaca"], [0.5, "#fde68a"], [1, "#86efac"]]  # confidence, 0..1: unsure red, sure green
EARLY, DRAFTS = "#c2410c", "#7e22ce"


def diffusion_steps(started: RunStarted | None, steps: list[Step]) -> bool:
    """Whether the run is a diffusion run (a canvas of positions rather than a chain of tokens)."""
    return started.method == "diffusion" if started else any(s.kind == CANVAS for s in steps)


def has_canvas(started: RunStarted | None, steps: list[Step]) -> bool:
    """Whether `steps` draw a canvas: a diffusion run's, once a step has put one down."""
    last = steps[-1].canvas if steps else None
    return last is not None and bool(last.guess) and diffusion_steps(started, steps)


def committed(steps: list[Step]) -> dict[int, tuple[int, str, float, int]]:
    """Position -> (token, text, confidence, index of the step) of every token committed by `steps`."""
    return {pos: (tok, step.texts[i] if i < len(step.texts) else str(tok), step.p[i], step.index)
            for step in steps for i, (pos, tok) in enumerate(zip(step.canvas.positions, step.tokens))}


def label(text: str) -> str:
    return shown(text, LABEL_CHARS)


def _cells(started: RunStarted | None, steps: list[Step]) -> tuple[int, int, int]:
    """(canvas length, block length, cells per row)."""
    settings = started.settings if started else {}
    length = len(steps[-1].canvas.guess) if steps else int(settings.get("max_new_tokens") or 0)
    block = max(1, min(int(settings.get("block") or length or 1), length or 1))
    return length, block, min(block, COLUMNS)


def _frame(steps: list[Step], upto: int, since: int, length: int, cols: int, padding: bool) -> list[dict]:
    """The canvas after steps[:upto], the cells committed by steps[since:upto] outlined; `padding`: the run is
    over, so a cell still masked was never decoded."""
    done, last = committed(steps[:upto]), steps[upto - 1].canvas
    new = {p for s in steps[since:upto] for p in s.canvas.positions}
    rows = math.ceil(length / cols)
    grid = lambda blank: [[blank] * cols for _ in range(rows)]  # noqa: E731  (a text of None would show "null")
    masked, tokens = ({"z": grid(None), "text": grid(""), "hovertext": grid("")} for _ in range(2))
    outline = dict(x=[], y=[])
    for pos in range(length):
        r, c = divmod(pos, cols)
        if pos in done:
            tok, text, p, index = done[pos]
            cell = (round(p, 4), label(text), f"position {pos}<br><b>{shown(text)}</b> (id {tok})<br>confidence "
                                              f"{fmt_prob(p)}<br>committed at step {index + 1}")
            if pos in new:
                outline["x"] += [c - 0.5, c + 0.5, c + 0.5, c - 0.5, c - 0.5, None]
                outline["y"] += [r - 0.5, r - 0.5, r + 0.5, r + 0.5, r - 0.5, None]
            target = tokens
        else:
            text = last.texts[pos] if pos < len(last.texts) else str(last.guess[pos])
            why = "never decoded: the text ended before it (padding)" if padding else \
                f"masked · the model's guess now: <b>{shown(text)}</b> (p = {fmt_prob(last.conf[pos])})"
            cell, target = (0, label(text) if not padding else "", f"position {pos}<br>{why}"), masked
        for key, value in zip(("z", "text", "hovertext"), cell):
            target[key][r][c] = value
    return [masked, tokens, outline]


def _title(steps: list[Step], upto: int, since: int, length: int) -> str:
    shown_steps = steps[since:upto]
    made = sum(len(s.tokens) for s in shown_steps)
    forwards = sum(s.target_forwards for s in steps[:upto])
    which = f"Step {shown_steps[0].number}" if len(shown_steps) == 1 else \
        f"Steps {shown_steps[0].number}–{shown_steps[-1].number}"
    total = sum(len(s.tokens) for s in steps[:upto])
    return f"<b>{which}</b> · committed {made} · {total} of {length} positions done · {forwards} forwards"


def block_frames(lo: int, hi: int, cols: int) -> str:
    """An SVG path (in cell units) around positions lo..hi-1 of a grid `cols` wide: a rectangle, or a staircase
    where the block starts or ends inside a row."""
    (r0, c0), (r1, c1) = divmod(lo, cols), divmod(hi - 1, cols)
    c1 += 1
    if r0 == r1:
        points = [(c0, r0), (c1, r0), (c1, r0 + 1), (c0, r0 + 1)]
    else:
        points = [(c0, r0), (cols, r0), (cols, r1), (c1, r1), (c1, r1 + 1), (0, r1 + 1), (0, r0 + 1), (c0, r0 + 1)]
    return "M " + " L ".join(f"{x - 0.5} {y - 0.5}" for x, y in points) + " Z"


def canvas_figure(started: RunStarted | None, steps: list[Step], done: bool = False) -> dict | None:
    """The canvas as a Plotly figure dict with one frame per step (or per run of steps, when there are many),
    shown after the newest; `done`: the run is over (cells still masked then are padding). None when there is
    no diffusion step."""
    if not has_canvas(started, steps):
        return None
    length, block, cols = _cells(started, steps)
    per = math.ceil(len(steps) / max(4, min(MAX_FRAMES, FRAME_CELLS // length)))  # steps per frame
    frames, labels = [], []
    for since in range(0, len(steps), per):
        upto = min(since + per, len(steps))
        first, last = steps[since].number, steps[upto - 1].number
        name = f"{last}" if per == 1 else f"{first}-{last}"
        frames.append(dict(name=name, data=_frame(steps, upto, since, length, cols, done and upto == len(steps)),
                           layout=dict(title=dict(text=_title(steps, upto, since, length)))))
        labels.append(f"step {name}")
    rows = math.ceil(length / cols)
    heat = dict(type="heatmap", xgap=2, ygap=2, hoverongaps=False, texttemplate="%{text}",
                hovertemplate="%{hovertext}<extra></extra>")
    font = dict(family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", size=11)
    data = [dict(heat, uid="masked", zmin=0, zmax=1, colorscale=[[0, MASK], [1, MASK]], showscale=False,
                 textfont=dict(font, color=FAINT)),
            dict(heat, uid="committed", zmin=0, zmax=1, colorscale=SCALE, textfont=dict(font, color=INK),
                 colorbar=dict(title=dict(text="confidence", side="right"), thickness=12, len=0.8, outlinewidth=0)),
            dict(type="scatter", uid="new", mode="lines", hoverinfo="skip", line=dict(color=OUTLINE, width=3))]
    for trace, now in zip(data, frames[-1]["data"]):
        trace.update(now)
    blocks = [dict(type="path", path=block_frames(lo, min(lo + block, length), cols), line=dict(
        color="#4f46e5", width=2), layer="above") for lo in range(0, length, block)]
    layout = dict(height=int(min(1100, 210 + 34 * rows)), margin=dict(l=60, r=10, t=50, b=130),
                  paper_bgcolor="white", plot_bgcolor="white", showlegend=False, hovermode="closest",
                  font=dict(family="system-ui, sans-serif", size=12, color="#374151"), shapes=blocks,
                  title=dict(text=frames[-1]["layout"]["title"]["text"], x=0.01, y=0.98, yanchor="top",
                             font=dict(size=14)),
                  xaxis=dict(range=[-0.5, cols - 0.5], side="top", showgrid=False, zeroline=False, fixedrange=True,
                             tickvals=list(range(cols)), tickfont=dict(color="#9ca3af", size=10)),
                  yaxis=dict(range=[rows - 0.5, -0.5], showgrid=False, zeroline=False, fixedrange=True,
                             tickvals=list(range(rows)), ticktext=[f"pos {r * cols}" for r in range(rows)],
                             tickfont=dict(color="#9ca3af", size=10)),
                  **player(frames, labels, len(frames) - 1))
    return dict(data=data, layout=layout, frames=frames)


def canvas_html(started: RunStarted | None, steps: list[Step], done: bool = False) -> str | None:
    """The canvas figure as HTML for a gr.HTML running static/player.js, with a caption."""
    fig = canvas_figure(started, steps, done)
    if fig is None:
        return None
    length, block, _ = _cells(started, steps)
    cap = (f'<div class="pg-cap"><b>Canvas</b> · {length} positions in blocks of {block} (framed) · ▶ Play or drag '
           f'the slider: grey = still masked, with the model\'s current guess written faintly; colour = a committed '
           f'token\'s confidence; outlined = committed by the step shown · hover a cell</div>')
    return (f'<div class="pg-canvas" data-steps="{len(steps)}" data-frames="{len(fig["frames"])}" '
            f'data-length="{length}">{cap}{animated_html(fig, "pg-canvas-plot")}</div>')


def early_exit(step: Step) -> bool:
    """A SchED step whose margin reached the exit threshold: it committed the rest of its block at once."""
    margin = step.canvas.margin if step.canvas is not None else None
    return margin is not None and step.threshold is not None and margin >= step.threshold


def commits_figure(steps: list[Step]) -> go.Figure:
    """Tokens committed per step: one bar per step; SchED's early exits and FreeDave's kept drafts stand out."""
    fig = new_figure()
    x = [s.number for s in steps]
    kinds = (("committed", lambda s: 0 if early_exit(s) else len(s.tokens) - s.accepted, "#4f6d8f"),
             ("kept FreeDave drafts", lambda s: s.accepted, DRAFTS),
             ("SchED early exit (rest of the block)", lambda s: len(s.tokens) if early_exit(s) else 0, EARLY))
    for name, count, colour in kinds:
        counts = [count(s) for s in steps]
        if any(counts) or name == "committed":
            fig.add_bar(x=x, y=counts, name=name, marker_color=colour,
                        customdata=[round(sum(s.p) / len(s.p), 3) if s.p else None for s in steps],
                        hovertemplate=f"{name}: %{{y}} (mean confidence %{{customdata}})<extra></extra>")
    fig.update_layout(barmode="stack", bargap=0.15)
    fig.update_yaxes(rangemode="tozero")
    return style_figure(fig, "Tokens committed per step", "step (one committing forward)", "tokens", not steps)


def forwards_figure(steps: list[Step]) -> go.Figure:
    """Cumulative tokens against cumulative forward passes; one token per forward (steps = length) is the
    diagonal."""
    return progress_figure(steps, "one token per forward (steps = length)", "Tokens vs forward passes")


def text_html(started: RunStarted | None, steps: list[Step], done: bool = False) -> str:
    """The output in position order: committed tokens as chips (the newest step's outlined), masks as grey
    chips up to the end of the canvas (or, once the run is `done`, up to the last committed token)."""
    length, _, _ = _cells(started, steps)
    at, newest = committed(steps), set(steps[-1].canvas.positions) if steps else set()
    end = max(at, default=-1) + 1 if done else length
    chips = []
    for pos in range(end):
        if pos in at:
            tok, text, p, index = at[pos]
            chips.append(chip(text, "pg-committed" + (" pg-new" if pos in newest else ""),
                               f"position {pos} · step {index + 1}\nconfidence = {fmt_prob(p)}", index))
        else:
            chips.append('<span class="pg-chip pg-masked" title="masked">░</span>')
    prompt = f'<span class="pg-prompt">{html.escape(started.prompt[-600:])}</span>' if started else ""
    return f'<div class="pg-panel">{prompt}{"".join(chips)}</div>'


def step_html(step: Step | None) -> str:
    """The latest step in words: forwards, what it committed where, and why (threshold, SchED exit, FreeDave)."""
    if step is None:
        return '<div class="pg-step pg-empty">No step yet.</div>'
    canvas = step.canvas
    chips = "".join(chip(t, "pg-committed", f"position {pos}\nconfidence = {fmt_prob(p)}", breaks=False)
                    for t, pos, p in zip(step.texts, canvas.positions, step.p))
    why = []
    if canvas.margin is not None:
        why.append(f"margin {canvas.margin:.2f} {'≥' if early_exit(step) else '<'} exit threshold "
                   f"{step.threshold:.2f}{' → early exit: the rest of the block at once' if early_exit(step) else ''}")
    elif step.threshold is not None:
        why.append(f"threshold {step.threshold:g}")
    if step.drafted:
        why.append(f"FreeDave kept {step.accepted} of {len(step.drafted)} drafted extra tokens")
    forwards = f"{step.target_forwards} forward{'s' if step.target_forwards != 1 else ''}"
    return (f'<div class="pg-step"><b>Step {step.number}</b> · {forwards} → committed {len(step.tokens)} at '
            f'positions {", ".join(map(str, canvas.positions))} {chips}{" · " + " · ".join(why) if why else ""} · '
            f'{step.target_s * 1e3:.1f} ms</div>')
