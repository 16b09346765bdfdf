"""What a person sees of a run, built from its typed events alone (no Gradio here).

The live view and the History replay both call `run_view`, so a replayed run at step k looks exactly like the live
run did after k steps. Model text is untrusted: every token goes through `html.escape`.
The views of how a run drafts (draft length, confidence vs threshold, layer stack, copied spans) are in
`views.drafts` (a feature-drafting head beside the target's layers: `views.features`), those of draft trees in
`views.tree`; `run_view` gives None for each that does not apply, and the app hides it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import plotly.graph_objects as go

from playground.analysis import theory
from playground.events import (
    RunFinished,
    RunStarted,
    Stats,
    Step,
)
from playground.methods import used
from playground.views import diffusion as dlm
from playground.views import drafts, features
from playground.views import theory as views_theory
from playground.views import tree as trees
from playground.views.chain import (
    accepted_figure,
    chips_html,
    progress_figure,
    step_html,
)
from playground.views.common import COLOURS, cards_html

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


def run_stats(source: RunFinished | Stats | list[Step]) -> Stats:
    """Stats of a finished run, or of the steps so far (time = the steps' own time, as the recorder counts it)."""
    if isinstance(source, RunFinished):
        return source.stats
    if isinstance(source, Stats):
        return source
    steps = list(source)
    return Stats.from_steps(steps, sum(s.seconds for s in steps))


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
             f'</span>', f"<b>run {'#' + str(started.run_id) if started.run_id is not None else '(not stored)'}</b>",
             html.escape(started.method), models,
             f"<small>{html.escape(settings)}</small>"]
    if position:
        parts.append(f"<b>{html.escape(position)}</b>")
    error = f'<div class="pg-error">{html.escape(finished.error)}</div>' if finished and finished.error else ""
    if finished and finished.not_stored:
        error += f'<div class="pg-error" data-not-stored="1">{html.escape(not_stored_note(finished.not_stored))}</div>'
    return '<div class="pg-status">' + "".join(f"<span>{p}</span>" for p in parts) + "</div>" + error


def not_stored_note(reason: str) -> str:
    """What a visitor is told of a run the database failed to store: why, without SQL, and that the result stands."""
    return (f"Not stored: the run database failed ({reason}). The result shown is complete, but History will not "
            f"have this run.")


def error_html(message: str) -> str:
    return f'<div class="pg-error" data-error="1"><b>Cannot run:</b> {html.escape(message)}</div>'


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
             total: int | None = None, animated: bool = True) -> RunView:
    """Everything shown for a run after `steps`: live (finished once it ends) or replay (`total` = all its steps).

    In a replay stopped before the last step the stats come from the steps shown, as they did live. A diffusion
    run shows its canvas, its text in position order and its own two charts instead of the drafting views.
    `animated=False` leaves out the draft tree and the canvas, players of every step that cost most of a long run's
    view, for a caller that draws them once for the whole run (share.page).
    """
    partial = total is not None and len(steps) < total
    position = f"step {len(steps)} of {total}" if total is not None else ""
    stats_source = finished if finished is not None and not partial else steps
    prompt = started.prompt if started else None
    if dlm.diffusion_steps(started, steps):
        done = finished is not None and not partial
        return RunView(status_html(started, finished, position), dlm.text_html(started, steps, done),
                       dlm.step_html(steps[-1] if steps else None), stats_html(stats_source),
                       dlm.commits_figure(steps), dlm.forwards_figure(steps),
                       canvas=dlm.canvas_html(started, steps, done) if animated else None)
    prediction = theory.predict(steps)
    return RunView(status_html(started, finished, position), chips_html(steps, prompt),
                   step_html(steps[-1] if steps else None), stats_html(stats_source),
                   accepted_figure(steps), views_theory.add_theory_line(progress_figure(steps), prediction),
                   drafts.draft_length_figure(steps), drafts.confidence_figure(steps),
                   drafts.layer_stack_html(steps) or features.head_html(steps),
                   drafts.copy_html(started, steps), trees.tree_html(started, steps) if animated else None,
                   trees.tree_size_figure(steps),
                   trees.depth_acceptance_figure(steps), theory=views_theory.theory_figure(prediction))
