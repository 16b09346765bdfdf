"""The History tab: the stored runs, one replayed step by step (buttons, a slider, or played on a timer), and the
run shown saved as one HTML page that replays it offline (share.page, as `export RUN --html FILE` writes it). In
hosted mode a visitor's own runs, and the gallery: the runs visitors published for everyone."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import gradio as gr

from playground.app.common import WARNING_S, shown_if, warn
from playground.app.inputs import whole
from playground.app.panel import RunPanel, run_panel, view_panel
from playground.app.visitors import Visitors
from playground.compare import drafting as compare
from playground.errors import PlaygroundError
from playground.share.page import export_html
from playground.views import run as views
from playground.views import theory as views_theory
from playground.views.common import clip

REPLAY_TICK_S = 0.3
PICK_A_RUN = "Pick a run above to replay it."
COLUMNS = ["id", "time (UTC)", "status", "method", "model", "draft", "tokens", "tokens/s", "prompt"]
PRIVATE = ("Your runs: only you see them (this playground is public). **Publish** puts the run you picked in the "
           "gallery below, for every visitor to see and replay.")


class HistoryTab(NamedTuple):
    run_pick: gr.Dropdown
    refresh: gr.Button
    runs_table: gr.Dataframe
    publish_btn: gr.Button    # hosted mode only: the picked run to the gallery
    gallery_table: gr.Dataframe  # hosted mode only: the published runs
    moves: list  # (button, steps it moves by): first, back, forward, last
    play_btn: gr.Button
    pause_btn: gr.Button
    position: gr.Slider
    speed: gr.Radio
    replay_view: RunPanel
    save_btn: gr.Button
    saved: gr.File


def history_tab(private: bool = False) -> HistoryTab:
    """The History tab's table, player controls and run panel; history_events wires them. `private` (hosted mode):
    the visitor's own runs, a Publish button and the gallery."""
    gr.Markdown(PRIVATE, visible=private, elem_id="history-private")
    with gr.Row():
        # custom values: a program (docs/API.md) names a run by its id without listing the runs first
        run_pick = gr.Dropdown([], label="Run", scale=4, allow_custom_value=True, elem_id="run-pick")
        refresh = gr.Button("Refresh", scale=1, elem_id="refresh-btn")
        publish_btn = gr.Button("Publish to the gallery", scale=1, visible=private, elem_id="publish-btn")
    runs_table = gr.Dataframe(headers=COLUMNS, interactive=False, max_height=260, elem_id="runs-table")
    gallery_table = gr.Dataframe(headers=COLUMNS, interactive=False, max_height=200, visible=private,
                                 label="Gallery: runs published by visitors", elem_id="gallery-table")
    with gr.Row():
        first_btn = gr.Button("◀◀ First", size="sm", elem_id="first-btn")
        back_btn = gr.Button("◀ Step back", size="sm", elem_id="back-btn")
        play_btn = gr.Button("▶ Play", size="sm", variant="primary", elem_id="play-btn")
        pause_btn = gr.Button("■ Pause", size="sm", elem_id="pause-btn")
        forward_btn = gr.Button("Step ▶", size="sm", elem_id="step-btn")
        last_btn = gr.Button("Last ▶▶", size="sm", elem_id="last-btn")
    with gr.Row(equal_height=True):
        position = gr.Slider(0, 1, 0, step=1, label="steps shown", scale=4, elem_id="position")
        speed = gr.Radio([1, 4, 16], value=1, label="steps per tick", scale=1, min_width=200, elem_id="speed")
    with gr.Row():
        save_btn = gr.Button("Save this run as an HTML page", size="sm", scale=1, interactive=False,
                             elem_id="save-html-btn")
        saved = gr.File(label="one self-contained page that replays the run offline", visible=False, scale=3,
                        elem_id="saved-html")
    replay_view = view_panel("replay", PICK_A_RUN, baseline=True)
    moves = [(first_btn, -10**9), (back_btn, -1), (forward_btn, 1), (last_btn, 10**9)]
    return HistoryTab(run_pick, refresh, runs_table, publish_btn, gallery_table, moves, play_btn, pause_btn, position,
                      speed, replay_view, save_btn, saved)


def history_events(visitors: Visitors, tab: HistoryTab, selected: gr.Tab, arrived) -> None:
    """The tables filled once the visitor has `arrived` (the page's load event), on Refresh and when the tab is
    `selected`; a run picked loaded and replayed; Publish. The replay's state and timer are made here, outside the
    tabs."""
    replays = Replays(visitors)
    replay_state = gr.State(None)
    timer = gr.Timer(REPLAY_TICK_S, active=False)
    listed = [tab.runs_table, tab.gallery_table, tab.run_pick]
    arrived.then(replays.history, None, listed)
    tab.refresh.click(replays.history, None, listed, api_name="history")
    selected.select(replays.history, None, listed)
    tab.runs_table.select(pick_row, None, tab.run_pick)
    tab.gallery_table.select(pick_row, None, tab.run_pick)
    tab.publish_btn.click(replays.publish, tab.run_pick, listed, api_name="publish")
    view = tab.replay_view.outputs
    tab.run_pick.change(replays.load, tab.run_pick, [replay_state, tab.position, *view], show_progress="hidden",
                        api_name="replay")
    tab.position.input(show, [replay_state, tab.position], view, show_progress="hidden")
    here = [tab.position, *view]
    for btn, delta in tab.moves:
        btn.click(lambda r, k, d=delta: move(r, k, d), [replay_state, tab.position], here, show_progress="hidden")
    tab.play_btn.click(play, [replay_state, tab.position], [timer, *here], show_progress="hidden")
    tab.pause_btn.click(lambda: gr.Timer(active=False), None, timer, queue=False)
    timer.tick(tick, [replay_state, tab.position, tab.speed], [timer, *here], show_progress="hidden")
    tab.run_pick.change(lambda run_id: (gr.update(interactive=run_id not in (None, "")), gr.update(visible=False)),
                        tab.run_pick, [tab.save_btn, tab.saved], queue=False)
    tab.save_btn.click(replays.save, tab.run_pick, tab.saved, api_name="save_html")


class Replays:
    """The handlers that read the stored runs, each as the visitor asking sees them (`visitors`)."""

    def __init__(self, visitors: Visitors):
        self.visitors = visitors
        self.pages = Path(tempfile.mkdtemp(prefix="playground-pages-"))  # the pages Save writes, one per run

    def save(self, run_id, visitor: gr.Request):
        """The run as one HTML page (share.page), offered for download: only a run the visitor may replay."""
        if run_id in (None, ""):
            return gr.update(visible=False)
        try:
            number = whole(run_id, "run id")
            path = export_html(self.visitors.recorder(visitor), number,
                               self.pages / f"decoding-playground-run-{number}.html")
        except PlaygroundError as exc:
            warn(str(exc))
            return gr.update(visible=False)
        return gr.update(value=str(path), visible=True)

    def history(self, visitor: gr.Request):
        """The runs table (in hosted mode: the visitor's own), the gallery (hosted mode), and the runs to pick."""
        recorder = self.visitors.recorder(visitor)
        try:
            rows = recorder.runs()
            gallery = recorder.gallery() if self.visitors.private else []
        except PlaygroundError as exc:  # a database that fails (locked, damaged): an empty History that says why
            warn(str(exc))
            rows, gallery = [], []
        mine = {r["id"] for r in rows}
        return table_of(rows), table_of(gallery), gr.update(
            choices=run_choices(rows + [r for r in gallery if r["id"] not in mine]))

    def publish(self, run_id, visitor: gr.Request):
        """Put the visitor's picked run in the gallery, with the autoregressive run made to compare with it."""
        if run_id in (None, ""):
            raise gr.Error("Pick one of your runs first, then publish it.", duration=WARNING_S)
        recorder = self.visitors.recorder(visitor)
        try:
            number = whole(run_id, "run id")
            recorder.publish(number)
            started = recorder.replay(number)[0]
        except PlaygroundError as exc:
            raise gr.Error(str(exc), duration=WARNING_S) from None
        if compare.reference_run(recorder, started) is not None:
            try:
                recorder.publish(number + 1)
            except PlaygroundError:
                pass  # someone else's run that happens to match: the run goes without its comparison
        gr.Info(f"Run #{number} is in the gallery: every visitor can now see and replay it.",
                duration=WARNING_S)
        return self.history(visitor)

    def load(self, run_id, visitor: gr.Request):
        if run_id in (None, ""):
            return None, gr.update(), *show(None, 0)
        recorder = self.visitors.recorder(visitor)
        try:
            replay = recorder.replay(whole(run_id, "run id"))
        except PlaygroundError as exc:
            warn(str(exc))
            return None, gr.update(), *run_panel(None, [], status=views.error_html(str(exc))), \
                gr.update(visible=False)
        replay = (*replay, compare.reference_run(recorder, replay[0]))
        n = len(replay[1])
        return replay, gr.update(maximum=max(n, 1), value=n), *show(replay, n)


def show(replay, k):
    if not replay:
        return [*run_panel(None, [], status=views.status_html(None, empty=PICK_A_RUN)), gr.update(visible=False)]
    started, steps, finished, reference = replay
    k = max(0, min(int(k or 0), len(steps)))
    against = views_theory.baseline_at(started, steps, finished, reference, k)
    return [*run_panel(started, steps[:k], finished, total=len(steps)), shown_if(against)]


def move(replay, k, delta):
    n = len(replay[1]) if replay else 0
    k = max(0, min(int(k or 0) + delta, n))
    return k, *show(replay, k)


def play(replay, k):
    n = len(replay[1]) if replay else 0
    k = 0 if int(k or 0) >= n else int(k)  # at the end: play from the start
    return gr.Timer(active=n > 0), k, *show(replay, k)


def tick(replay, k, speed):
    n = len(replay[1]) if replay else 0
    k = min(int(k or 0) + int(speed or 1), n)
    return gr.Timer(active=False) if k >= n else gr.skip(), k, *show(replay, k)  # never undo a Pause


def table_of(rows: list[dict]) -> list[list]:
    return [[r["id"], r["created_at"].replace("T", " ")[:19], r["status"], r["method"], r["model"], r["draft"] or "",
             r["new_tokens"], round(r["tokens_per_s"] or 0, 1), one_line(r["prompt"], 60)] for r in rows]


def one_line(text: str, limit: int) -> str:
    """`text` on one line (its runs of white space as single spaces), clipped to `limit` characters."""
    return clip(" ".join(text.split()), limit)


def run_choices(rows: list[dict]) -> list[tuple[str, int]]:
    return [(f"#{r['id']} · {r['status']} · {r['method']} · {one_line(r['prompt'], 40)}", r["id"]) for r in rows]


def pick_row(evt: gr.SelectData):
    return evt.row_value[0]  # the run id
