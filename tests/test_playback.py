"""Playback of a run decoded quietly: when each recorded step is shown."""

import pytest

from playground.events import Step
from playground.views import playback


def step(i: int, draft: float, target: float, other: float, tokens: int = 1) -> Step:
    return Step(index=i, tokens=[7] * tokens, sources=["target"] * tokens, p=[0.5] * tokens, q=[None] * tokens,
                draft_s=draft, target_s=target, other_s=other)


def test_steps_end_when_their_own_draft_verify_and_other_time_has_passed():
    steps = [step(0, 0.01, 0.02, 0.001), step(1, 0.0, 0.03, 0.0), step(2, 0.005, 0.01, 0.005)]
    ends = playback.step_ends(steps)
    assert ends == pytest.approx([0.031, 0.061, 0.081])
    assert [playback.steps_by(ends, t) for t in (0.0, 0.03, 0.031, 0.06, 0.07, 0.081, 5.0)] == [0, 0, 1, 1, 2, 3, 3]


def test_a_long_run_plays_back_faster_a_short_one_at_its_own_pace():
    assert playback.pace([]) == 1.0
    assert playback.pace([0.5, 1.0]) == 1.0
    assert playback.pace([10.0, 36.0], longest=12.0) == pytest.approx(3.0)
    assert "at the pace it ran: step 2 of 5" in playback.playing_note(2, 5, 1.0)
    assert "3.0× faster than it ran" in playback.playing_note(2, 5, 3.0)


def test_the_progress_line_counts_tokens_not_steps():
    steps = [step(0, 0, 0.01, 0, tokens=3), step(1, 0, 0.01, 0, tokens=1)]
    assert playback.decoding_note(steps).startswith("decoding: 4 tokens so far")
    assert playback.decoding_note(steps[:0], "then autoregressive decoding").startswith(
        "then autoregressive decoding: 0 tokens so far")
    assert "1 token so far" in playback.decoding_note([step(0, 0, 0.01, 0)])
