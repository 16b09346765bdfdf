"""The diffusion views, on real recorded runs of the shipped tiny-code-diffusion (never asserting on its tokens: the
weights change): one canvas frame per step, masks giving way to committed tokens, escaping, the charts' totals, and
the Diffusion tab's judging."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import pytest
from conftest import SHIPPED_DIR

from playground.compare import diffusion as compare_diffusion
from playground.events import Stats, Step
from playground.views import diffusion as views_diffusion
from playground.views import run as views

MODEL = "tiny-code-diffusion"
PROMPT = "def add(a, b):\n"
N = 16


@pytest.fixture(scope="module")
def runs(run_engine) -> dict:
    """(RunStarted, steps, RunFinished) of a threshold run and of a FreeDave run, 16 positions in blocks of 8."""
    if not (SHIPPED_DIR / MODEL / "config.json").is_file():
        pytest.skip(f"{MODEL} is not shipped yet")
    out = {}
    for strategy in ("threshold", "freedave"):
        started, steps, finished = run_engine(prompt=PROMPT, model=MODEL, method="diffusion", max_new_tokens=N,
                                              params={"strategy": strategy, "block": 8})
        assert finished.status == "finished" and steps
        out[strategy] = (started, steps, finished)
    return out


def masked_cells(frame: dict) -> int:
    return sum(z is not None for row in frame["data"][0]["z"] for z in row)


def committed_cells(frame: dict) -> int:
    return sum(z is not None for row in frame["data"][1]["z"] for z in row)


def test_one_frame_per_step_and_the_masks_give_way(runs):
    for started, steps, _ in runs.values():
        fig = views_diffusion.canvas_figure(started, steps)
        frames = fig["frames"]
        assert len(frames) == len(steps)
        assert [f["name"] for f in frames] == [str(s.number) for s in steps]
        done = 0
        for frame, step in zip(frames, steps):
            done += len(step.canvas.positions)
            assert committed_cells(frame) == done  # a token appears at the step that committed it
            assert masked_cells(frame) == N - done  # the rest stay grey
            outline = frame["data"][2]["x"]
            assert outline.count(None) == len(step.canvas.positions)  # the cells this step committed, outlined
        grey = [masked_cells(f) for f in frames]
        assert all(a > b for a, b in zip(grey, grey[1:]))
        slider = fig["layout"]["sliders"][0]
        assert slider["active"] == len(frames) - 1 and len(slider["steps"]) == len(frames)
        assert [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]] == ["▶ Play", "❚❚ Pause"]
        assert len(fig["layout"]["shapes"]) == N // 8  # one frame per block


def test_hover_tells_position_token_confidence_and_step(runs):
    started, steps, _ = runs["threshold"]
    fig = views_diffusion.canvas_figure(started, steps[:3])
    masked, committed = fig["frames"][-1]["data"][:2]
    hovers = [h for row in committed["hovertext"] for h in row if h]
    assert all(t == "" for row, zs in zip(committed["text"], committed["z"]) for t, z in zip(row, zs) if z is None)
    assert len(hovers) == sum(len(s.canvas.positions) for s in steps[:3])
    first = steps[0]
    r, c = divmod(first.canvas.positions[0], 8)
    assert f"position {first.canvas.positions[0]}" in committed["hovertext"][r][c]
    assert f"committed at step {first.number}" in committed["hovertext"][r][c] and "confidence" in \
        committed["hovertext"][r][c]
    assert all("masked" in h and "guess" in h for row in masked["hovertext"] for h in row if h)


def test_many_steps_share_frames(runs, monkeypatch):
    started, steps, _ = runs["threshold"]
    monkeypatch.setattr(views_diffusion, "MAX_FRAMES", 4)
    frames = views_diffusion.canvas_figure(started, steps)["frames"]
    per = -(-len(steps) // 4)
    assert len(frames) == -(-len(steps) // per)
    assert committed_cells(frames[-1]) == N and masked_cells(frames[-1]) == 0


def test_model_text_is_escaped(runs):
    started, steps, finished = runs["threshold"]
    evil = "<script>alert(1)</script>"
    steps = [replace(s, texts=[evil] * len(s.tokens), canvas=replace(s.canvas, texts=[evil] * len(s.canvas.guess)))
             for s in steps]
    out = views_diffusion.canvas_html(started, steps[:4])
    assert "<script" not in out
    data = re.search(r'<div class="pg-anim-data" hidden>(.*?)</div>', out, re.S).group(1)
    fig = json.loads(html.unescape(data))
    texts = [t for trace in fig["frames"][-1]["data"][:2] for row in trace["text"] for t in row if t]
    hovers = [t for trace in fig["frames"][-1]["data"][:2] for row in trace["hovertext"] for t in row if t]
    assert texts and all(t == "&lt;scr…" for t in texts)  # cut to 5, then escaped: Plotly shows text, runs nothing
    assert all("<script" not in h and "&lt;script&gt;" in h for h in hovers)
    view = views.run_view(started, steps, finished)
    assert "<script" not in view.chips + view.step + view.canvas


def test_charts_add_up_to_the_stats(runs):
    for _, steps, finished in runs.values():
        stats = Stats.from_steps(steps, 1.0)
        bars = views_diffusion.commits_figure(steps)
        assert sum(sum(t.y) for t in bars.data if t.type == "bar") == stats.new_tokens == N
        kept = [t for t in bars.data if t.name == "kept FreeDave drafts"]
        assert (sum(kept[0].y) if kept else 0) == sum(s.accepted for s in steps)
        run = views_diffusion.forwards_figure(steps).data[-1]
        assert run.x[-1] == stats.target_forwards == finished.stats.target_forwards
        assert run.y[-1] == N


def test_run_view_shows_the_canvas_instead_of_the_drafting_views(runs):
    started, steps, finished = runs["freedave"]
    view = views.run_view(started, steps, finished)
    assert view.canvas and 'class="pg-canvas"' in view.canvas
    assert all(getattr(view, name) is None for name in views.OPTIONAL if name != "canvas")
    committed = {i for s in steps for i in s.canvas.positions}  # one chip with a data-step per token (line breaks add
    assert view.chips.count(' data-step="') == len(committed) <= N  # continuation chips without one)
    assert "pg-masked" not in view.chips
    partial = views.run_view(started, steps[:1], finished, total=len(steps))  # a replay at step 1
    assert partial.chips.count("pg-masked") == N - len(steps[0].canvas.positions)
    assert 'data-steps="1"' in partial.canvas
    chain = Step(index=0, tokens=[5], sources=["target"], p=[0.5], q=[None])
    assert views.run_view(None, [chain]).canvas is None


def test_block_frames_follow_blocks_that_start_inside_a_row():
    assert views_diffusion.block_frames(0, 16, 16) == "M -0.5 -0.5 L 15.5 -0.5 L 15.5 0.5 L -0.5 0.5 Z"
    # positions 20..39 of a 16-wide grid: from row 1 col 4 to row 2 col 7
    path = views_diffusion.block_frames(20, 40, 16)
    assert path.startswith("M 3.5 0.5 L 15.5 0.5 L 15.5 1.5 L 7.5 1.5 L 7.5 2.5 L -0.5 2.5")


def test_the_diffusion_tab_judges_both_outputs(runs):
    started, steps, finished = runs["freedave"]
    slow = compare_diffusion.judge(started, finished, finished.token_ids)
    assert slow.agreement == 1.0 and slow.forwards == finished.stats.target_forwards
    assert slow.perplexity is None or slow.perplexity > 1
    assert slow.cache == "dual"  # the cache 'auto' picks for freedave
    assert 'data-stat="cache"><b>' + slow.cache in compare_diffusion.stats_html(slow)
    fast = slow._replace(forwards=max(1, slow.forwards // 2), agreement=0.5)
    assert "2.00× fewer" in compare_diffusion.stats_html(fast, slow) or slow.forwards < 2
    fig = compare_diffusion.curve_figure([(0.9, fast), (0.5, slow)], slow)
    curve = {trace.name: trace for trace in fig.data}
    assert list(curve["agreement with the slow output"].x) == sorted([fast.forwards, slow.forwards])
    # the slow star first (drawn under the curve) and open, so a threshold's point on it stays visible
    assert fig.data[0].name.startswith("slow") and fig.data[0].marker.symbol == "star-open"
    assert compare_diffusion.parse_thresholds("0.9, 0.5,0.9") == [0.5, 0.9]
    with pytest.raises(Exception, match="in \\(0, 1\\]"):
        compare_diffusion.parse_thresholds("0.5, 2")
    slow_req, fast_req = compare_diffusion.requests(PROMPT, MODEL, 8, "threshold", 0.7)
    assert slow_req.params["strategy"] == "fixed_steps" and slow_req.params["steps"] == 0
    assert fast_req.params == {"strategy": "threshold", "block": 32, "threshold": 0.7, "cache": "prefix"}
    assert slow_req.params["cache"] == "prefix"  # the same cache on both sides unless the user changes one
    _, fast_own = compare_diffusion.requests(PROMPT, MODEL, 8, "freedave", 0.7, 16, "none", "dual")
    assert fast_own.params["cache"] == "dual" and set(compare_diffusion.STRATEGY_HELP) == set(
        compare_diffusion.FAST_STRATEGIES)


def test_thresholds_on_the_same_point_share_one_label_and_neighbours_alternate():
    """The curve's labels never sit on each other (issue 24): thresholds that landed on the same point (forwards and
    agreement) share one label; neighbouring labels go above and below their points."""
    def judged(forwards, agreement):
        return compare_diffusion.Judged(forwards, 0.1, 32, agreement, 2.0)
    points = [(0.99, judged(32, 1.0)), (0.9, judged(32, 1.0)), (0.95, judged(32, 1.0)), (0.5, judged(11, 0.25)),
              (0.7, judged(12, 0.25))]
    assert [label for label, _ in compare_diffusion.curve_points(points)] == ["0.5", "0.7", "0.9 · 0.95 · 0.99"]
    fig = compare_diffusion.curve_figure(points, judged(32, 1.0))
    curve = next(t for t in fig.data if t.name == "agreement with the slow output")
    assert list(curve.text) == ["0.5", "0.7", "0.9 · 0.95 · 0.99"]
    assert list(curve.textposition) == ["top center", "bottom center", "top center"]
    assert curve.cliponaxis is False  # a label under a point at 0% is not cut off by the axis
