"""The views are pure functions of events: escaping, colouring, stats and figures, live and replay alike."""

from __future__ import annotations

import re

from playground import views
from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET, RunFinished, RunStarted, Stats, Step


def spec_step(index: int, texts: list[str], sources: list[str], accepted: int, drafted: int = 3) -> Step:
    n = len(texts)
    return Step(index=index, tokens=list(range(n)), sources=sources, p=[0.9] * n, q=[0.8] * (n - 1) + [None],
                drafted=list(range(drafted)), draft_p=[0.5] * drafted, draft_q=[0.6] * drafted, accepted=accepted,
                gamma=drafted, draft_forwards=drafted, draft_s=0.01, target_s=0.02, other_s=0.001, texts=texts,
                drafted_texts=[f"d{i}" for i in range(drafted)])


STEPS = [spec_step(0, ["def", " f", "(x"], [ACCEPTED, ACCEPTED, REPLACEMENT], accepted=2),
         spec_step(1, ["):\n", "    ", "return", " x"], [ACCEPTED, ACCEPTED, ACCEPTED, BONUS], accepted=3)]
STARTED = RunStarted(method="speculative", model="m", draft="d", prompt="<b>p</b>", prompt_ids=[1],
                     settings={"gamma": 3}, run_id=7)


def test_chips_one_per_token_with_source_class_step_and_probabilities():
    out = views.chips_html(STEPS)
    assert len(re.findall(r'class="pg-chip pg-\w+[^"]*" title="[^"]*" data-step="\d"', out)) == 7
    assert out.count("pg-accepted") >= 5 and "pg-replacement" in out and "pg-bonus" in out
    assert "q (draft) = 0.800" in out and "p (target) = 0.900" in out and "q (draft) = —" in out
    assert out.count("pg-new") == 4 + 1  # the newest step's chips, and the legend entry


def test_untrusted_text_is_escaped_and_newlines_break_outside_chips():
    step = Step(index=0, tokens=[1, 2], sources=[TARGET, TARGET], p=[1.0, 1.0], q=[None, None],
                texts=["<script>alert(1)</script>", "a\n  b"])
    out = views.chips_html([step], prompt="<img src=x onerror=alert(2)>")
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x" in out
    assert "↵</span></span>\n<span" in out  # the line breaks between chips; "  b" goes on in a continuation chip
    assert out.count("data-step") == 2


def test_step_html_tells_accepted_rejected_and_unverified_drafts():
    out = views.step_html(spec_step(0, ["a", "b"], [ACCEPTED, REPLACEMENT], accepted=1, drafted=3))
    assert out.count("pg-accepted") == 2 and "pg-rejected" in out and "pg-unverified" in out
    assert "accepted 1 of 3" in out


def test_stats_mid_run_and_at_the_end():
    mid = views.stats_html(STEPS)
    assert 'data-stat="new_tokens"><b>7</b>' in mid and 'data-stat="saved"><b>5</b>' in mid
    assert 'data-stat="acceptance_rate"><b>83%</b>' in mid
    final = RunFinished(status="finished", text="", token_ids=[], stats=Stats(new_tokens=9, target_forwards=3))
    assert 'data-stat="new_tokens"><b>9</b>' in views.stats_html(final)
    assert 'data-stat="acceptance_rate"><b>—</b>' in views.stats_html([])


def test_figures_have_titles_axes_and_the_autoregressive_baseline():
    acc, prog = views.accepted_figure(STEPS), views.progress_figure(STEPS)
    assert acc.layout.xaxis.title.text and acc.layout.yaxis.title.text
    assert {t.name for t in acc.data} >= {"accepted draft", "replacement", "bonus", "gamma (drafted)"}
    assert list(prog.data[1].y) == [0, 3, 7] and list(prog.data[1].x) == [0, 1, 2]
    assert "autoregressive" in prog.data[0].name
    assert views.accepted_figure([]).layout.annotations  # "no steps yet"


def test_replay_at_every_step_matches_the_live_view():
    finished = RunFinished(status="finished", text="", token_ids=[],
                           stats=Stats.from_steps(STEPS, sum(s.draft_s + s.target_s + s.other_s for s in STEPS)))
    for k in range(len(STEPS) + 1):
        live = views.run_view(STARTED, STEPS[:k], finished if k == len(STEPS) else None)
        replay = views.run_view(STARTED, STEPS[:k], finished, total=len(STEPS))
        assert live.chips == replay.chips and live.stats == replay.stats and live.step == replay.step
        assert live.accepted.to_json() == replay.accepted.to_json()
        assert f"step {k} of 2" in replay.status and "&lt;b&gt;p" in replay.chips
