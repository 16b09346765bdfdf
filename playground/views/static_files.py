"""The text of the app's static files (static/ beside the playground package: its CSS and the JavaScript of its
players), each read once, and the installed plotly package's own Plotly.js. No Gradio here: the app hands the text to
Gradio, and an exported run page (playground.share) inlines the same files."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import plotly

from playground.errors import PlaygroundError

STATIC = Path(__file__).resolve().parents[2] / "static"
# the animated views use Plotly.js frames, which gr.Plot drops: the app and exported pages load the plotly package's
# own copy (no CDN)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


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
    """The style sheet (the rules made from colour tables are not in it: css_text adds them)."""
    return text("playground.css")


def css_text() -> str:
    """The page's style sheet: static/playground.css, then the rules made from colour tables (the chips' sources, the
    tree legend's keys), which stay beside their tables so that charts and chips cannot drift apart."""
    from playground.views import run, tree
    return "\n".join([css(), run.SOURCE_CSS, tree.KEY_CSS])


@cache
def plotly_js() -> str:
    """The installed plotly package's Plotly.js, to inline in a page that must load nothing."""
    try:
        return PLOTLY_JS.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaygroundError(f"cannot read Plotly.js at {PLOTLY_JS} ({exc.strerror or exc})") from None


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
