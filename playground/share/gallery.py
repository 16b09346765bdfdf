"""A static site of chosen runs (`python -m playground gallery RUN [RUN ...] --out DIR`): index.html lists them (model,
method, speedup over autoregressive decoding of the same prompt, tokens per target forward) and links one exported
page per run (share.page), and README.md carries the front matter of a static Hugging Face Space. Every file is
self-contained: a class can host the folder anywhere, with no server running models."""

from __future__ import annotations

import html
from pathlib import Path

from playground.compare.drafting import reference_run
from playground.errors import PlaygroundError
from playground.events import RunFinished, RunStarted, Step
from playground.share.page import document, run_page, write_text
from playground.views.common import clip

SPACE_README = """---
title: Decoding Playground runs
sdk: static
app_file: index.html
pinned: false
---

Runs of the Decoding Playground, each replayed offline by its own page: open index.html.
"""
COLUMNS = ("run", "method", "model", "status", "tokens", "tokens/s", "speedup", "tokens / target forward", "prompt")


def page_name(run_id: int) -> str:
    return f"run-{run_id}.html"


def speedup(started: RunStarted, finished: RunFinished, reference: RunFinished | None) -> str:
    """How many times faster than autoregressive decoding of the same prompt, stored right after it; '—' without."""
    if started.method == "autoregressive":
        return "baseline"
    base = reference.stats.tokens_per_s if reference is not None and reference.status == "finished" else 0
    return f"{finished.stats.tokens_per_s / base:.2f}×" if base > 0 else "—"


def _row(started: RunStarted, finished: RunFinished, reference: RunFinished | None) -> str:
    s = finished.stats
    model = started.model + (f" + draft {started.draft}" if started.draft else "")
    prompt = clip(" ".join(started.prompt.split()), 60)
    cells = [f'<a href="{page_name(started.run_id)}">#{started.run_id}</a>', html.escape(started.method),
             html.escape(model), html.escape(finished.status), str(s.new_tokens), f"{s.tokens_per_s:.1f}",
             speedup(started, finished, reference), f"{s.mean_accepted:.2f}", f"<code>{html.escape(prompt)}</code>"]
    return f'<tr data-run="{started.run_id}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def index_page(runs: list[tuple[RunStarted, list[Step], RunFinished, RunFinished | None]]) -> str:
    """The gallery's index: one row per run (started, steps, finished, reference), linking its page."""
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    rows = "\n".join(_row(started, finished, reference) for started, _, finished, reference in runs)
    return document("Decoding Playground · runs", f"""<header class="pg-page-head"><h1>Decoding Playground · runs</h1>
<p>{len(runs)} recorded run{"s" * (len(runs) != 1)} of fast-decoding methods. Open one to replay it step by step: every
drafted token, acceptance and rejection, with its charts. The speedup is over autoregressive decoding of the same
prompt, recorded right after the run (— where there is none).</p></header>
<main class="pg-gallery"><table>
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody></table></main>
<footer class="pg-page-foot">Written by Decoding Playground (python -m playground gallery); every page is
self-contained and loads nothing from the network.</footer>""")


def write_gallery(recorder, run_ids: list[int], out: str | Path) -> Path:
    """Write the gallery of `run_ids` (stored in `recorder`, a storage.Recorder) into folder `out`, made if missing;
    the index's path. Every run is read before anything is written: an unknown one writes nothing."""
    repeated = sorted({r for r in run_ids if run_ids.count(r) > 1})
    if repeated:
        raise PlaygroundError(f"run {repeated[0]} is listed twice")
    runs = []
    for run_id in run_ids:
        started, steps, finished = recorder.replay(run_id)
        runs.append((started, steps, finished, reference_run(recorder, started)))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PlaygroundError(f"cannot write the gallery into {str(out)!r}: it is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlaygroundError(f"cannot make the folder {str(out)!r}: {exc.strerror or exc}") from None
    for started, steps, finished, reference in runs:
        write_text(out / page_name(started.run_id), run_page(started, steps, finished, reference, index="index.html"))
    write_text(out / "README.md", SPACE_README)
    return write_text(out / "index.html", index_page(runs))
