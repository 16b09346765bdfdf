"""What the tabs share: timings, example prompts, the boxes that draw a figure, and how a run that failed is shown."""

from __future__ import annotations

import html
import time

import gradio as gr

from playground.engine import warm_up
from playground.errors import PlaygroundError
from playground.views import run as views
from playground.views import static_files
from playground.views.static_files import PLOTLY_JS

SETTLE_S = 0.3          # before timing anything, time for the browser to finish drawing what it was last sent
WARNING_S = 6           # how long a warning pop-up stays: the panel keeps the message, so they need not pile up
PLOT_MIN_WIDTH = 300  # two charts side by side where they fit, else one under the other
# The Generate tab opens on the first (its default eagle run: 1.5x autoregressive there, identical output), the
# Compare tab on it too (docs/BENCHMARKS.md "EAGLE and the lean runtime"); the Diffusion tab has its own
EXAMPLES = [
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "import os\n\n\ndef list_python_files(folder):\n",
    "def is_prime(n):\n    if n < 2:\n        return False\n",
]
# the numbers models (dag, gad, the DAG tab) translate French number phrases to English
NUMBER_EXAMPLES = ["trois cent douze", "quatre mille deux cent cinquante-trois", "soixante et onze",
                   "neuf cent quatre-vingt-dix-neuf mille"]
PLOTLY_HEAD = f'<script src="gradio_api/file={PLOTLY_JS}"></script>'


def warm_up_all(requests) -> None:
    """Warm up each request's method and models (engine.warm_up), then give the browser time to draw what it was
    sent, so that neither first calls nor drawing slow down the timed runs that follow."""
    for request in requests:
        warm_up(request)
    time.sleep(SETTLE_S)


def progress_only(line: str, outputs: list) -> list:
    """While runs are timed only the line that says which one is running changes: drawing more, in a browser on
    the same cores, would slow the runs down."""
    return [line, *[gr.update()] * (len(outputs) - 1)]


def warn(message: str) -> None:
    gr.Warning(message, duration=WARNING_S)


def warn_unstored(*finished) -> None:
    """One warning for a click whose runs (any of `finished`, RunFinished or None) the database did not store."""
    reason = next((f.not_stored for f in finished if f is not None and f.not_stored), None)
    if reason:
        warn(html.escape(views.not_stored_note(reason)))  # the toast renders HTML


def failed(exc: Exception) -> str:
    """The message a run that raised `exc` shows, also warned: never a traceback; a PlaygroundError says what to
    fix, any other exception what broke."""
    message = str(exc) if isinstance(exc, PlaygroundError) else f"{type(exc).__name__}: {exc}"
    warn(message)
    return message


def shown_if(value) -> dict:
    return gr.update(visible=False) if value is None else gr.update(value=value, visible=True)


def tree_view(elem_id: str) -> gr.HTML:
    """A box that draws an animated figure (views_tree.tree_html, views_diffusion.canvas_html) with Plotly.js
    (static/player.js); hidden until there is one."""
    return gr.HTML(visible=False, js_on_load=static_files.player_js(), head=PLOTLY_HEAD, elem_id=elem_id)


def chart(elem_id: str, figure=None) -> gr.Plot:
    """One chart of a run, hidden until it has a figure; two share a row where both fit, else they stack."""
    return gr.Plot(figure, show_label=False, visible=figure is not None, min_width=PLOT_MIN_WIDTH, elem_id=elem_id)


def dag_view(elem_id: str) -> gr.HTML:
    """A box that draws views_dag.dag_html (its sliders and clicks run in the page); hidden until there is one."""
    return gr.HTML(visible=False, js_on_load=static_files.dag_js(), head=PLOTLY_HEAD, elem_id=elem_id)
