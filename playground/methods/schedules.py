"""Draft-length schedules: how many tokens to draft next step, and when to stop drafting early.

- constant: always gamma.
- heuristic (as in transformers): gamma + 2 after a step where every drafted token was accepted, else gamma - 1.
- confidence: draft up to gamma tokens, stop after one whose draft probability is below `min_confidence`.
- specdecpp: SpecDec++'s rule with a training-free stand-in for its acceptance head: stop once the estimated
  probability that some drafted token is rejected, 1 - prod(draft confidences), exceeds `max_reject`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from playground.methods.base import Param

KINDS = ("constant", "heuristic", "confidence", "specdecpp")
MAX_GAMMA = 32
PARAMS = (
    Param("schedule", "constant", "draft-length schedule", choices=KINDS),
    Param("min_confidence", 0.4, "confidence schedule: stop drafting below this draft probability", min=0.0, max=1.0),
    Param("max_reject", 0.7, "specdecpp schedule: stop once P(some draft rejected) exceeds this", min=0.0, max=1.0),
)


@dataclass
class Schedule:
    kind: str
    gamma: int
    min_confidence: float = 0.4
    max_reject: float = 0.7

    def stop_after(self, confidences: list[float]) -> bool:
        """Stop drafting now, given the draft's probabilities of the tokens drafted so far this step?"""
        if self.kind == "confidence":
            return confidences[-1] < self.min_confidence
        if self.kind == "specdecpp":
            return 1.0 - math.prod(confidences) > self.max_reject
        return False

    def update(self, drafted: int, accepted: int) -> str:
        """Adapt gamma after a verification; return why it changed (empty when it did not)."""
        if self.kind != "heuristic" or drafted == 0:
            return ""
        old = self.gamma
        self.gamma = min(old + 2, MAX_GAMMA) if accepted == drafted else max(1, old - 1)
        verdict = f"all {drafted} accepted" if accepted == drafted else f"{accepted} of {drafted} accepted"
        return f"{verdict}: gamma {old} -> {self.gamma}" if self.gamma != old else ""


def make_schedule(gamma: int, schedule: str = "constant", min_confidence: float = 0.4,
                  max_reject: float = 0.7) -> Schedule:
    return Schedule(schedule, gamma, min_confidence, max_reject)
