"""The text of the app's static files (static/ beside the playground package: its CSS and the JavaScript of its
players), each read once. No Gradio here; the app hands the text to Gradio where the strings went before."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playground.errors import PlaygroundError

STATIC = Path(__file__).resolve().parents[2] / "static"


@cache
def text(name: str) -> str:
    """The text of static/`name`; a PlaygroundError naming the path if it cannot be read."""
    path = STATIC / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaygroundError(f"cannot read the app's static file {path} ({exc.strerror or exc}): "
                              f"static/ must sit beside the playground package") from None


def css() -> str:
    """The style sheet (the rules made from colour tables are not in it: playground.app.build.css_text adds them)."""
    return text("playground.css")


def player_js() -> str:
    """js_on_load of a gr.HTML showing an animated figure (views.player.animated_html): draws it with Plotly.js."""
    return text("player.js")


def scroll_to_newest_js() -> str:
    """js_on_load of a run's chips: keeps the newest tokens in sight as they are re-rendered."""
    return text("scroll_to_newest.js")


def dag_js() -> str:
    """js_on_load of the gr.HTML showing views.dag.dag_html: draws the graph; its sliders prune it in the browser."""
    return text("dag.js")


def copy_hover_js() -> str:
    """js_on_load of the copied-spans view (views.drafts.copy_html): hovering a copy lights up where it came from."""
    return text("copy_hover.js")
