"""How a run drafts, drawn from its events alone (no Gradio here), for the live view and the replay alike.

- `draft_length_figure`: draft length asked (gamma), drafted and accepted per step, and where the schedule moved.
- `confidence_figure`: the draft's probability of each drafted token against the stop threshold in force.
- `layer_stack_html`: layer-skipping drafts: which attention and MLP sub-layers the draft switched off.
- `copy_html`: copied drafts: the context as token chips; hovering a drafted chip lights up the span it came from.

Each returns None when it does not apply to the steps given; the app then hides it. Model text is untrusted: every
token goes through `html.escape`, in HTML and in Plotly hover labels alike.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from playground.events import ACCEPTED, TREE, RunStarted, Step
from playground.views.common import (
    COLOURS,
    LABELS,
    NEWLINE,
    fmt_prob,
    new_figure,
    style_figure,
)

DRAFTED, REJECTED, UNVERIFIED = "#94a3b8", "#b91c1c", "#9ca3af"
CHANGED = "#d97706"
COPY_ROWS = 40        # copy steps listed, newest first
CONTEXT_TOKENS = 1500  # context chips shown at least (from the end), plus every listed source span
SPAN_LEAD = 24         # context tokens shown before the earliest listed source span


def drafts(steps: list[Step]) -> bool:
    return any(s.gamma > 0 or s.drafted for s in steps)


def _esc(text: str) -> str:
    """Token text for a Plotly hover label: escaped (Plotly reads tags in labels), newlines visible. Quotes stay:
    Plotly would show &quot; as it is."""
    return html.escape(repr(text)[1:-1], quote=False)


def draft_length_figure(steps: list[Step]) -> go.Figure | None:
    """Per step: draft length asked (gamma), tokens drafted and accepted; markers where the schedule moved. Not for
    tree runs: their tree size chart (views_tree) says this of trees."""
    if not drafts(steps) or any(s.kind == TREE for s in steps):
        return None
    x = [s.number for s in steps]
    reasons = [html.escape(s.gamma_reason) or "schedule unchanged" for s in steps]
    fig = new_figure()
    fig.add_bar(x=x, y=[len(s.drafted) for s in steps], name="drafted", marker_color=DRAFTED,
                hovertemplate="drafted %{y}<extra></extra>")
    fig.add_bar(x=x, y=[s.accepted for s in steps], name="accepted", marker_color=COLOURS[ACCEPTED][0],
                hovertemplate="accepted %{y}<extra></extra>")
    fig.add_scatter(x=x, y=[s.gamma for s in steps], name="gamma asked", customdata=reasons,
                    mode="lines+markers" if len(steps) <= 60 else "lines", marker=dict(size=4),
                    line=dict(color="#111827", shape="hvh", width=1.5),
                    hovertemplate="gamma asked %{y}<br>after this step: %{customdata}<extra></extra>")
    changed = [s for s in steps if s.gamma_reason]
    if changed:
        fig.add_scatter(x=[s.number for s in changed], y=[s.gamma for s in changed], mode="markers",
                        name="schedule changed gamma / threshold after this step", hoverinfo="skip",
                        marker=dict(symbol="diamond", size=9, color=CHANGED, line=dict(color="white", width=1)))
    fig.update_layout(barmode="overlay", bargap=0.2)
    top = max(max((s.gamma for s in steps), default=1), max((len(s.drafted) for s in steps), default=1))
    fig.update_yaxes(rangemode="tozero", dtick=1 if top <= 10 else None)
    return style_figure(fig, "Draft length per step", "step", "tokens", False)


def confidence_figure(steps: list[Step]) -> go.Figure | None:
    """Draft probability q of each drafted token against the threshold in force while drafting, step by step."""
    held = [s for s in steps if s.threshold is not None]
    if not held:
        return None
    fig = new_figure()
    edges = [s.number - 0.5 for s in held] + [held[-1].number + 0.5]
    fig.add_scatter(x=edges, y=[s.threshold for s in held] + [held[-1].threshold], name="threshold",
                    mode="lines", line=dict(color=CHANGED, shape="hv", width=2),
                    hovertemplate="threshold %{y:.3f}<extra></extra>")
    groups = {"accepted": ([], [], [], COLOURS[ACCEPTED][0], "circle"),
              "rejected": ([], [], [], REJECTED, "x"),
              "not verified (after a rejection)": ([], [], [], UNVERIFIED, "circle-open")}
    for s in steps:
        n = len(s.draft_q)
        for i, q in enumerate(s.draft_q):
            state = "accepted" if i < s.accepted else "rejected" if i == s.accepted else \
                "not verified (after a rejection)"
            xs, ys, texts, _, _ = groups[state]
            text = s.drafted_texts[i] if i < len(s.drafted_texts) else str(s.drafted[i])
            p = s.draft_p[i] if i < len(s.draft_p) else None
            xs.append(s.number - 0.5 + (i + 1) / (n + 1))
            ys.append(q)
            texts.append(f"step {s.number} · drafted #{i + 1} '{_esc(text)}'<br>q (draft) = {fmt_prob(q)} · "
                         f"p (target) = {fmt_prob(p)}")
    for name, (xs, ys, texts, colour, symbol) in groups.items():
        if xs:
            fig.add_scatter(x=xs, y=ys, name=name, mode="markers", text=texts, hovertemplate="%{text}<extra></extra>",
                            marker=dict(color=colour, size=7, symbol=symbol))
    style_figure(fig, "Draft confidence vs threshold", "step (tokens in drafting order)", "q (draft probability)",
                 False)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def layer_stack_html(steps: list[Step]) -> str | None:
    """The decoder layers of the latest layer-skipping step, each with its attention and MLP sub-layer (not for
    feature drafts, which skip nothing: views.features draws those)."""
    step = next((s for s in reversed(steps) if s.layers > 0 and not s.tapped), None)
    if step is None:
        return None
    skipped = set(step.skipped)
    total = 2 * step.layers
    count = sum(f"{i}.{k}" in skipped for i in range(step.layers) for k in ("attn", "mlp"))
    layers = []
    for i in range(step.layers):
        subs = []
        for kind in ("attn", "mlp"):
            name = f"{i}.{kind}"
            off = name in skipped
            title = f"layer {i} {'attention' if kind == 'attn' else 'MLP'}: " + \
                ("skipped while drafting, run when verifying" if off else "run while drafting and verifying")
            subs.append(f'<span class="pg-sub pg-{kind}{" pg-skipped" if off else ""}" data-sublayer="{name}" '
                        f'data-skipped="{int(off)}" title="{title}">{kind}</span>')
        layers.append(f'<div class="pg-layer" data-layer="{i}"><small>{i}</small>{"".join(subs)}</div>')
    # a step that drafted nothing (token budget) has no skip set
    skipping = [s for s in steps if s.layers > 0 and not s.tapped]
    changes = [s.number for prev, s in zip(skipping, skipping[1:]) if prev.skipped != s.skipped]
    changed = f" · skip set last changed at step {changes[-1]}" if changes else ""
    return (f'<div class="pg-layers" data-skipped="{count}" data-total="{total}"><div class="pg-cap">'
            f'<b>{count} of {total} sub-layers skipped while drafting</b> · step {step.number}{changed}</div>'
            f'<div class="pg-stack"><span class="pg-io">embed →</span>{"".join(layers)}'
            f'<span class="pg-io">→ head</span></div><div class="pg-note">The draft runs the coloured '
            f'sub-layers only; the target verifies its tokens with all {total}.</div></div>')


def prompt_pieces(prompt: str, ids: list[int], known: dict[int, str]) -> list[tuple[int, int, str]]:
    """The prompt split into (first, end, text) pieces covering token positions [first, end).

    Events carry no text per prompt token, so the texts come from the tokens seen decoded elsewhere in the run
    (`known`: id -> text), matched against the prompt in order; tokens never seen become one piece together,
    holding the prompt text between their known neighbours.
    """
    def usable(t):
        return t is not None and t != "" and "\ufffd" not in t

    pieces, pos, i, n = [], 0, 0, len(ids)
    while i < n:
        text = known.get(ids[i])
        if usable(text) and prompt.startswith(text, pos):
            pieces.append((i, i + 1, text))
            pos, i = pos + len(text), i + 1
            continue
        j, end = i + 1, len(prompt)
        while j < n:  # the gap [i, j) ends before the next run of known tokens found further on in the prompt
            run = ""
            for k in range(j, min(j + 4, n)):
                if not usable(known.get(ids[k])):
                    break
                run += known[ids[k]]
            at = prompt.find(run, pos) if run else -1
            if at >= 0:
                end = at
                break
            j += 1
        pieces.append((i, j, prompt[pos:end]))
        pos, i = end, j
    return pieces


def _ctx_chip(text: str, classes: str, attrs: str) -> str:
    """A context chip; a newline shows as ↵ and breaks the line, the text after it in a continuation chip."""
    if text == "":
        return f'<span class="pg-chip {classes}" {attrs}><span class="pg-ws">∅</span></span>'
    parts = text.split("\n")
    out = []
    for i, part in enumerate(parts):
        body = html.escape(part) + (NEWLINE if i < len(parts) - 1 else "")
        if body:
            out.append(f'<span class="pg-chip {classes}" {attrs}>{body}</span>')
        if i < len(parts) - 1:
            out.append("\n")
    return "".join(out)


def copy_html(started: RunStarted | None, steps: list[Step]) -> str | None:
    """The context (prompt + output so far) as chips, and each step's copied draft: hover one of its tokens to
    light up the span of the context it was copied from."""
    copies = [s for s in steps if s.draft_source is not None]
    if not copies:
        return None
    prompt_ids = started.prompt_ids if started else []
    known: dict[int, str] = {}
    for s in steps:
        known.update(zip(s.drafted, s.drafted_texts))
        known.update(zip(s.tokens, s.texts))
    exact = getattr(started, "prompt_texts", None)
    if exact and len(exact) == len(prompt_ids):
        pieces = [(i, i + 1, t) for i, t in enumerate(exact)]
    else:
        pieces = prompt_pieces(started.prompt if started else "", prompt_ids, known)
    pieces = [(a, b, t, "pg-ctx-prompt", f"prompt token {a}" if b == a + 1 else f"prompt tokens {a}-{b - 1}")
              for a, b, t in pieces]
    pos = len(prompt_ids)
    for s in steps:
        for i, token in enumerate(s.tokens):
            text = s.texts[i] if i < len(s.texts) else f"<id {token}>"
            newest = " pg-new" if s is steps[-1] else ""
            pieces.append((pos, pos + 1, text, f"pg-{s.sources[i]}{newest}",
                           f"output token {pos} (step {s.number}, {LABELS.get(s.sources[i], s.sources[i])})"))
            pos += 1
    rows = copies[::-1][:COPY_ROWS]
    first = max(0, min([s.draft_source for s in rows] + [pos - CONTEXT_TOKENS]) - SPAN_LEAD)
    latest = copies[-1]
    span = (latest.draft_source, latest.draft_source + len(latest.drafted))
    chips = []
    for a, b, text, classes, title in pieces:
        if b <= first:
            continue
        lit = " pg-src-latest" if a < span[1] and b > span[0] else ""
        chips.append(_ctx_chip(text, f"pg-ctx {classes}{lit}",
                               f'data-a="{a}" data-b="{b}" title="{html.escape(title)}"'))
    cut = '<span class="pg-prompt">…</span>' if first else ""
    drafted = sum(len(s.drafted) for s in copies)
    accepted = sum(s.accepted for s in copies)
    cap = (f'<div class="pg-cap"><b>{len(copies)} of {len(steps)} steps copied a draft</b> · mean span '
           f'{drafted / len(copies):.1f} tokens · {accepted} of {drafted} copied tokens accepted · hover a copied '
           f'token to see where it came from; the latest step\'s source is underlined</div>')
    more = f'<div class="pg-note">…and {len(copies) - len(rows)} earlier copy steps</div>' \
        if len(copies) > len(rows) else ""
    return (f'<div class="pg-copy">{cap}<div class="pg-panel pg-ctx-panel">{cut}{"".join(chips)}</div>'
            f'<div class="pg-rows">{"".join(_copy_row(s) for s in rows)}{more}</div></div>')


def _copy_row(s: Step) -> str:
    """One step's copied draft: its length, where it came from, its tokens coloured by the verdict."""
    start, n = s.draft_source, len(s.drafted)
    chips = []
    for i in range(n):
        text = s.drafted_texts[i] if i < len(s.drafted_texts) else str(s.drafted[i])
        state = ACCEPTED if i < s.accepted else "rejected" if i == s.accepted else "unverified"
        verdict = LABELS[ACCEPTED] if state == ACCEPTED else "rejected by the target" if state == "rejected" \
            else "not verified (after a rejection)"
        title = html.escape(f"copied #{i + 1} from context position {start + i}\n{verdict}")
        body = html.escape(text).replace("\n", NEWLINE) if text else '<span class="pg-ws">∅</span>'
        chips.append(f'<span class="pg-chip pg-{state}" data-src="{start + i}" data-span="{start} {start + n}" '
                     f'title="{title}">{body}</span>')
    return (f'<div class="pg-row" data-step="{s.index}"><b>{n}</b> copied from position {start} at step '
            f'{s.number}: {"".join(chips)} · {s.accepted} accepted</div>')
