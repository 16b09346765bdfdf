"""Watching a run without slowing it down: decode quietly first, then play the recorded steps back at their pace.

A browser drawing charts on the same cores as the model takes the time the run is measured by. On the 2-core dev
machine, a 128-token `speculative` run drawn while it decoded read 0.33-0.52x autoregressive decoding, where the
same pair decoded with no browser about read 1.8x (docs/BENCHMARKS.md, "Timing a run the app shows"). So while a
run is timed the app shows only a line of progress; then it replays the steps at the pace they were made, from
their own timings.
"""

from __future__ import annotations

import bisect
from itertools import accumulate

from playground.events import Step

LONGEST_S = 12.0  # a run that took longer plays back faster, in this many seconds


def step_ends(steps: list[Step]) -> list[float]:
    """Seconds of the method's own time from the start of the run to the end of each step."""
    return list(accumulate(s.seconds for s in steps))


def pace(ends: list[float], longest: float = LONGEST_S) -> float:
    """How many times faster than it ran a run plays back: 1, or more for a run that took over `longest` s."""
    return max(1.0, ends[-1] / longest) if ends else 1.0


def steps_by(ends: list[float], seconds: float) -> int:
    """How many steps had ended `seconds` into the run."""
    return bisect.bisect_right(ends, seconds)


def playing_note(shown: int, total: int, speed: float) -> str:
    at = "at the pace it ran" if speed <= 1.0 else f"{speed:.1f}× faster than it ran"
    return f"playing back {at}: step {shown} of {total}"


def decoding_note(steps: list[Step], what: str = "decoding") -> str:
    made = sum(len(s.tokens) for s in steps)
    return (f"{what}: {made} token{'s' if made != 1 else ''} so far. Drawn once it is done: drawing now would slow "
            "down the run and its timing")
