"""The panel that shows one run (the Generate and History tabs each have one), and a run played back in it.

Its components are matched to what fills them by name: `PARTS` are views.RunView's fields, then the DAG graph; a
part of RunView without a component here stops the app at start instead of shifting the others.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import gradio as gr

from playground.app.common import chart, dag_view, shown_if, tree_view
from playground.views import chain, playback, static_files
from playground.views import dag as views_dag
from playground.views import run as views

UPDATE_EVERY_S = 0.15   # at most this often a run played back is re-drawn (plus the final one)
PARTS = (*views.RunView._fields, "graph")  # graph: views_dag.dag_html, for runs whose steps carry one (dag, gad)


@dataclass(frozen=True)
class RunPanel:
    """view_panel's components: `parts` by PARTS name, and the run against autoregressive decoding of the same prompt
    (views_theory.baseline_html) under the stats where the panel has it."""
    parts: dict[str, gr.components.Component]
    baseline: gr.HTML | None = None

    def __post_init__(self):
        if set(self.parts) != set(PARTS):
            raise ValueError(f"the run panel has components for {sorted(self.parts)}, not for {sorted(PARTS)}")

    @property
    def outputs(self) -> list:
        """The components in the order of panel_values, then the baseline (if any)."""
        return [*(self.parts[name] for name in PARTS), *([self.baseline] if self.baseline is not None else [])]


def view_panel(prefix: str, empty: str | None = None, baseline: bool = False) -> RunPanel:
    """The components that show one run, filled by run_panel. `empty`: what the status says before there is a run.
    With `baseline`, one more under the stats: the run against autoregressive decoding of the same prompt."""
    parts = dict(status=gr.HTML(views.status_html(None, **({"empty": empty} if empty else {})),
                                elem_id=f"{prefix}-status"),
                 chips=gr.HTML(chain.chips_html([]), elem_id=f"{prefix}-chips",
                               js_on_load=static_files.scroll_to_newest_js()),
                 step=gr.HTML(chain.step_html(None), elem_id=f"{prefix}-step"),
                 stats=gr.HTML(views.stats_html([]), elem_id=f"{prefix}-stats"))
    against = gr.HTML(visible=False, elem_id=f"{prefix}-baseline") if baseline else None
    # diffusion: the canvas, animated; tree methods: the draft tree, animated, and how big it was against what got
    # accepted
    parts["canvas"] = tree_view(f"{prefix}-canvas")
    parts["tree"] = tree_view(f"{prefix}-tree")
    parts["graph"] = dag_view(f"{prefix}-dag")  # dag and gad: the graph of the one parallel pass
    with gr.Row(equal_height=True):
        parts["tree_size"] = chart(f"{prefix}-tree-size")
        parts["depth_acceptance"] = chart(f"{prefix}-depth-acceptance")
    with gr.Row(equal_height=True):
        parts["accepted"] = chart(f"{prefix}-accepted", chain.accepted_figure([]))
        parts["progress"] = chart(f"{prefix}-progress", chain.progress_figure([]))
    # how the run drafts: each shown only where it applies (panel() sets visibility on every update)
    with gr.Row(equal_height=True):
        parts["drafts"] = chart(f"{prefix}-drafts")
        parts["confidence"] = chart(f"{prefix}-confidence")
        parts["theory"] = chart(f"{prefix}-theory")  # acceptance by draft position (chains) or sibling rank (trees)
    parts["layers"] = gr.HTML(visible=False, js_on_load=None, elem_id=f"{prefix}-layers")
    parts["copies"] = gr.HTML(visible=False, js_on_load=static_files.copy_hover_js(), elem_id=f"{prefix}-copies")
    return RunPanel(parts, against)


def panel_values(**values) -> list:
    """The values of a RunPanel's parts (its outputs but the baseline), given by part name; a part not named keeps
    what it shows."""
    unknown = set(values) - set(PARTS)
    if unknown:
        raise ValueError(f"the run panel has no part {sorted(unknown)}")
    return [values.get(name, gr.update()) for name in PARTS]


def panel(view: views.RunView) -> dict:
    """A RunView as values of the panel's parts, by name: the optional views hidden where they do not apply."""
    return {name: shown_if(value) if name in views.OPTIONAL else value for name, value in view._asdict().items()}


def run_panel(started, steps: list, finished=None, total: int | None = None, note: str = "",
              status: str | None = None) -> list:
    """panel_values of every part after `steps`: views.run_view's, then the DAG graph (shown for runs whose steps
    carry one: dag, gad). `note`: said in the status line instead of the step count; `status`: the whole status
    line instead (an error, say)."""
    view = views.run_view(started, steps, finished, total)
    if note:
        view = view._replace(status=views.status_html(started, finished, note))
    if status is not None:
        view = view._replace(status=status)
    return panel_values(**panel(view), graph=shown_if(views_dag.dag_html(started, steps)))


def play_back(started, steps: list, cancel: threading.Event, tail: list):
    """A run's panel after more and more of its recorded steps, at the pace they were made (faster for a long run:
    playback.pace), up to the last but one: the caller shows the last. `tail`: the outputs after the panel."""
    ends = playback.step_ends(steps)
    speed, begun, shown = playback.pace(ends), time.perf_counter(), 0
    while not cancel.is_set():
        shown = max(shown + 1, playback.steps_by(ends, (time.perf_counter() - begun) * speed))
        if shown >= len(steps):
            return
        drawn = time.perf_counter()
        yield [*run_panel(started, steps[:shown], note=playback.playing_note(shown, len(steps), speed)), *tail]
        time.sleep(max(UPDATE_EVERY_S, 3 * (time.perf_counter() - drawn)))  # drawing: at most 1/4 of the time
