"""Prompt lookup and the draft-length schedules: still the target's own greedy output, token for token."""

from __future__ import annotations

import pytest
from conftest import PROMPTS
from test_lossless import NEW, greedy_autoregressive

from playground.methods.prompt_lookup import find_continuation
from playground.methods.schedules import Schedule

# A copy-heavy prompt: the function is there twice, so looking the context up finds real continuations.
REPEAT = "def area(width, height):\n    return width * height\n\n\ndef area(width, height):\n"


def test_find_continuation_prefers_long_and_recent_matches():
    ctx = [1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 2, 3]
    assert find_continuation(ctx, 3, 1, 2) == ([7, 8], 7)  # "2 3" last seen at 5-6: what followed is 7 8
    assert find_continuation([4, 5, 6], 3, 1, 4) == ([], -1)
    assert find_continuation([5, 6, 5], 2, 1, 3) == ([6, 5], 1)
    assert find_continuation([1, 2, 1, 2], 2, 2, 8) == ([1, 2], 2)


@pytest.mark.parametrize("schedule", ["constant", "heuristic"])
def test_prompt_lookup_greedy_equals_autoregressive(any_pair, run_engine, schedule):
    accepted = drafted = 0
    for prompt in (*PROMPTS, REPEAT):
        expected = greedy_autoregressive(run_engine, any_pair, prompt)
        _, steps, finished = run_engine(prompt=prompt, model=any_pair.target, method="prompt_lookup",
                                        params={"schedule": schedule}, max_new_tokens=NEW, stop_at_eos=False)
        assert finished.status == "finished", finished.error
        assert finished.token_ids == expected, f"prompt_lookup differs from greedy on {prompt!r}"
        for s in steps:
            assert s.draft_forwards == 0 and s.target_forwards == 1
            assert (s.draft_source is None) == (not s.drafted)
        accepted += sum(s.accepted for s in steps)
        drafted += sum(len(s.drafted) for s in steps)
    assert drafted > 0


@pytest.mark.parametrize("schedule", ["heuristic", "confidence", "specdecpp", "adaptive"])
def test_adaptive_schedules_stay_lossless(any_pair, run_engine, schedule):
    for prompt in PROMPTS[:2]:
        expected = greedy_autoregressive(run_engine, any_pair, prompt)
        _, steps, finished = run_engine(prompt=prompt, model=any_pair.target, draft=any_pair.draft,
                                        method="speculative", params={"gamma": 4, "schedule": schedule},
                                        max_new_tokens=NEW, stop_at_eos=False)
        assert finished.token_ids == expected, f"{schedule} differs from greedy on {prompt!r}"
        assert all(len(s.drafted) <= s.gamma for s in steps)


def test_schedule_rules():
    h = Schedule("heuristic", 4)
    assert h.update(4, 4) == "all 4 accepted: gamma 4 -> 6" and h.gamma == 6
    assert h.update(6, 2) == "2 of 6 accepted: gamma 6 -> 5" and h.gamma == 5
    one = Schedule("heuristic", 1)
    assert one.update(1, 0) == "" and one.gamma == 1
    c = Schedule("confidence", 8, min_confidence=0.4)
    assert c.stop_after([0.9, 0.3]) and not c.stop_after([0.9, 0.5])
    s = Schedule("specdecpp", 8, max_reject=0.5)
    assert not s.stop_after([0.9, 0.8]) and s.stop_after([0.9, 0.8, 0.6])  # 1-.72=.28 ; 1-.432=.568
    assert Schedule("constant", 4).update(4, 4) == "" and not Schedule("constant", 4).stop_after([0.01])


def test_confidence_schedule_drafts_less_than_constant(llama_pair, run_engine):
    counts = {}
    for schedule in ("constant", "confidence"):
        _, steps, _ = run_engine(prompt=PROMPTS[0], model=llama_pair.target, draft=llama_pair.draft,
                                 method="speculative", params={"gamma": 8, "schedule": schedule,
                                                               "min_confidence": 0.9}, max_new_tokens=NEW)
        counts[schedule] = sum(s.draft_forwards for s in steps) / len(steps)
    assert counts["confidence"] < counts["constant"]
