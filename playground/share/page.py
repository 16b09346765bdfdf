"""A stored run as ONE self-contained HTML page that replays it offline: `python -m playground export RUN --html FILE`
and the History tab's download.

The page holds what History shows of the run after each of its steps, made by the same code (views.run.run_view,
views.dag.dag_html, views.theory.baseline_at): HTML parts as they are, charts as Plotly figures. static/export.js
swaps them in place as its player moves, draws the charts with Plotly.js, and runs the views' own scripts from
static/ (player.js, dag.js, copy_hover.js, scroll_to_newest.js) on them as the app does. The style sheet, the
scripts and Plotly.js are inlined and a Content-Security-Policy forbids every request: the page loads nothing.

Sizes: a run of more than MAX_FRAMES steps is shown after MAX_FRAMES evenly spread steps (each frame's text holds
every token so far; the player says which step it shows), so a page grows with the run's length, not with its
square. The animated views (the draft tree, the diffusion canvas) are players of every step themselves: the page
draws the whole run's once and shows it from the step where History shows one.

Model output is untrusted: the views escape every token, and the frames travel as JSON in which <, > and & are
written as \\u escapes, so no text of a run can close the script element that holds them.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from playground.compare.drafting import reference_run
from playground.errors import PlaygroundError
from playground.events import RunFinished, RunStarted, Step
from playground.views import dag as views_dag
from playground.views import diffusion as views_diffusion
from playground.views import playback, static_files
from playground.views import run as views
from playground.views import theory as views_theory
from playground.views import tree as views_tree

MAX_FRAMES = 80
# the parts as the app's run panel (app.panel.view_panel) lays them out, a row of charts side by side where they fit
LAYOUT = (("status",), ("chips",), ("step",), ("stats",), ("baseline",), ("canvas",), ("tree",), ("graph",),
          ("tree_size", "depth_acceptance"), ("accepted", "progress"), ("drafts", "confidence", "theory"),
          ("layers",), ("copies",))
FIGURES = {"accepted", "progress", "drafts", "confidence", "theory", "tree_size", "depth_acceptance"}
# the script from static/ the app runs on a part (its js_on_load), given the part's element and watch()
SCRIPTS = {"tree": "player.js", "canvas": "player.js", "graph": "dag.js", "chips": "scroll_to_newest.js",
           "copies": "copy_hover.js"}
# no request of any kind: not a script, a style sheet, an image, a font, a frame or a fetch
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; worker-src blob:; form-action 'none'; base-uri 'none'")


def frame_steps(total: int, most: int = MAX_FRAMES) -> list[int]:
    """How many steps each frame shows: 0, 1, ..., `total`, or `most` evenly spread counts ending at `total`."""
    if total <= most:
        return list(range(total + 1))
    return sorted({0, *(round(i * total / most) for i in range(1, most + 1))})


def parts_at(started: RunStarted, steps: list[Step], finished: RunFinished, reference: RunFinished | None,
             shown: int, animated: dict | None = None) -> dict:
    """Every part of the run panel by name after `shown` steps, as History shows them (None: hidden). `animated`:
    the whole run's draft tree and canvas (its parts_at), shown from the step where History starts showing them,
    instead of drawing them again for these steps."""
    view = views.run_view(started, steps[:shown], finished, total=len(steps), animated=animated is None)
    parts = {**view._asdict(), "graph": views_dag.dag_html(started, steps[:shown]),
             "baseline": views_theory.baseline_at(started, steps, finished, reference, shown)}
    if animated is not None:
        parts["tree"] = animated["tree"] if views_tree.tree_steps(steps[:shown]) else None
        parts["canvas"] = animated["canvas"] if views_diffusion.has_canvas(started, steps[:shown]) else None
    return parts


class _Values:
    """The frames' distinct values as JSON texts: a part that did not change between frames (the layer stack, a chart
    of a finished run) costs one number per frame, and an HTML part that grew (the chips: the new step's tokens, the
    previous newest step no longer outlined) is stored as its change from the part's value one frame before,
    {"delta": [that value's index, characters kept at its start, characters kept at its end, the text between]},
    so the text of a long run costs its length, not its length times its frames."""

    def __init__(self):
        self.texts: list[str] = []
        self.index: dict[str, int] = {}
        self.html: dict[int, str] = {}  # index -> the whole HTML, of values stored as deltas too

    def add(self, value, before: int | None = None) -> int | None:
        """The index of `value` (None: none); `before`: the index of the part's value one frame before."""
        if value is None:
            return None
        text = value.to_json() if hasattr(value, "to_json") else json.dumps(value)
        if text in self.index:
            return self.index[text]
        at = self.index[text] = len(self.texts)
        if isinstance(value, str):
            self.html[at] = value
            text = self._delta(value, before) or text
        self.texts.append(text)
        return at

    def _delta(self, value: str, before: int | None) -> str | None:
        """`value` as a change from value `before`, where that is less than half its size."""
        old = self.html.get(before)
        if old is None:
            return None
        keep = len(os.path.commonprefix([old, value]))
        room = min(len(old), len(value)) - keep
        tail = len(os.path.commonprefix([old[keep:][::-1], value[keep:][::-1]])[:room])
        middle = value[keep:len(value) - tail]
        return json.dumps({"delta": [before, keep, tail, middle]}) if len(middle) * 2 < len(value) else None


def script_json(text: str) -> str:
    """JSON text that can sit inside a <script> element: <, > and & as \\u escapes (valid in JSON strings, and they
    occur nowhere else in JSON), so no value can close the element or open a comment."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def run_data(started: RunStarted, steps: list[Step], finished: RunFinished, reference: RunFinished | None = None,
             most: int = MAX_FRAMES) -> str:
    """The page's frames as JSON: `frames` (steps shown, seconds into the run at the pace it ran, the index of each
    part's value), `values` (_Values), and the run's `steps` count."""
    ends = playback.step_ends(steps)
    speed = playback.pace(ends)
    counts = frame_steps(len(steps), most)
    final = parts_at(started, steps, finished, reference, len(steps))
    values, frames, before = _Values(), [], {}
    for shown in counts:
        parts = final if shown == len(steps) else parts_at(started, steps, finished, reference, shown, final)
        before = {name: values.add(value, before.get(name)) for name, value in parts.items()}
        frames.append({"steps": shown, "t": round(ends[shown - 1] / speed if shown else 0.0, 4), "parts": before})
    head = json.dumps({"run": started.run_id, "steps": len(steps), "speed": speed, "frames": frames},
                      separators=(",", ":"))
    return script_json(head[:-1] + ',"values":[' + ",".join(values.texts) + "]}")


def _part(name: str) -> str:
    kind = "figure" if name in FIGURES else "html"
    script = f' data-script="{SCRIPTS[name]}"' if name in SCRIPTS else ""
    return (f'<div class="pg-part" data-for="{name}" hidden><div class="pg-box" id="pg-{name}" data-part="{name}" '
            f'data-kind="{kind}"{script}></div></div>')


def _scripts() -> str:
    """The views' scripts, each as a function of (element, watch), as Gradio's js_on_load runs them."""
    names = sorted(set(SCRIPTS.values()))
    return "window.pgPartScripts = {" + ",\n".join(
        f"{json.dumps(name)}: function (element, watch) {{\n{static_files.text(name)}\n}}" for name in names) + "};"


def _inline(js: str) -> str:
    """Script text that cannot end its element early."""
    return js.replace("</script", "<\\/script")


def run_page(started: RunStarted, steps: list[Step], finished: RunFinished, reference: RunFinished | None = None,
             most: int = MAX_FRAMES, index: str | None = None) -> str:
    """The whole page of one run: `reference`, the autoregressive run decoded right after it to compare, if any;
    `index`, a page listing this one and others (a gallery's), linked from the top."""
    title = f"Run #{started.run_id} · {started.method} · Decoding Playground"
    back = f' <a href="{html.escape(index)}" id="pg-index">All runs</a>.' if index else ""
    rows = "\n".join(f'<div class="pg-row-of{len(row)}">{"".join(_part(name) for name in row)}</div>'
                     for row in LAYOUT)
    body = f"""<header class="pg-page-head"><h1>Decoding Playground</h1>
<p>Run #{started.run_id}, replayed from its recorded steps: every step as the app's History tab shows it. This page
is self-contained and loads nothing from the network.{back}</p></header>
<nav class="pg-player" aria-label="replay">
<button type="button" id="pg-first">◀◀ First</button><button type="button" id="pg-back">◀ Step back</button>
<button type="button" id="pg-play" class="pg-primary">▶ Play</button>
<button type="button" id="pg-pause">■ Pause</button>
<button type="button" id="pg-step">Step ▶</button><button type="button" id="pg-last">Last ▶▶</button>
<label>pace <select id="pg-pace"><option value="run">as it ran</option><option value="0.3">a frame every 0.3 s
</option></select></label>
<input type="range" id="pg-position" min="0" max="0" value="0" aria-label="steps shown">
<output id="pg-at"></output>
</nav>
<noscript><p class="pg-error">The replay needs JavaScript.</p></noscript>
<main class="pg-run">
{rows}
</main>
<footer class="pg-page-foot">Exported by Decoding Playground (python -m playground export RUN --html FILE).</footer>
<script type="application/json" id="pg-run-data">{run_data(started, steps, finished, reference, most)}</script>
<script>{_inline(static_files.plotly_js())}</script>
<script>{_inline(_scripts())}</script>
<script>{_inline(static_files.text("export.js"))}</script>"""
    return document(title, body)


def document(title: str, body: str) -> str:
    """A whole page: the Content-Security-Policy that forbids every request, the app's style sheet and the exported
    pages' own (static/export.css), then `body` (HTML, written escaped by its maker)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title>
<style>
{static_files.css_text()}
{static_files.text("export.css")}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` whole or not at all (a temporary file beside it, then renamed); one line if it
    cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise PlaygroundError(f"cannot write {str(path)!r}: it is a folder")
    if not path.parent.is_dir():
        raise PlaygroundError(f"cannot write {str(path)!r}: no folder {str(path.parent)!r}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise PlaygroundError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PlaygroundError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path


def export_html(recorder, run_id: int, path: str | Path) -> Path:
    """Write stored run `run_id` of `recorder` (a storage.Recorder) to `path` as one page; the path."""
    started, steps, finished = recorder.replay(run_id)
    return write_text(path, run_page(started, steps, finished, reference_run(recorder, started)))
