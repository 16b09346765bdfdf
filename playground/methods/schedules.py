"""Draft-length schedules: how many tokens to draft next step, and when to stop drafting early.

- constant: always gamma.
- heuristic (as in transformers): gamma + 2 after a step where every drafted token was accepted, else gamma - 1.
- confidence: draft up to gamma tokens, stop after one whose draft probability is below `min_confidence`.
- specdecpp: SpecDec++'s rule with a training-free stand-in for its acceptance head: stop once the estimated
  probability that some drafted token is rejected, 1 - prod(draft confidences), exceeds `max_reject`.
- adaptive (Draft & Verify, arXiv 2309.08168): the confidence stop, with a threshold that follows the acceptance
  rate: a smoothed acceptance below `target_acceptance` raises the threshold (draft less, more carefully), above it
  lowers the threshold (draft more). Starts at `min_confidence`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from playground.methods.base import Param

KINDS = ("constant", "heuristic", "confidence", "specdecpp", "adaptive")
MAX_GAMMA = 32
PARAMS = (
    Param("schedule", "constant", "draft-length schedule", choices=KINDS),
    Param("min_confidence", 0.4, "confidence schedule: stop drafting below this draft probability", min=0.0, max=1.0),
    Param("max_reject", 0.7, "specdecpp schedule: stop once P(some draft rejected) exceeds this", min=0.0, max=1.0),
    Param("target_acceptance", 0.8, "adaptive schedule: acceptance rate the threshold steers towards",
          min=0.05, max=0.99),
)
# The schedules that read each schedule parameter (the app shows an input only for these).
PARAM_SCHEDULES = {"min_confidence": ("confidence", "adaptive"), "max_reject": ("specdecpp",),
                   "target_acceptance": ("adaptive",)}
# Draft & Verify's adjuster constants: acceptance smoothing, threshold smoothing, threshold step.
ACCEPT_SMOOTHING, THRESHOLD_SMOOTHING, THRESHOLD_STEP = 0.5, 0.9, 0.01


@dataclass
class Schedule:
    kind: str
    gamma: int
    min_confidence: float = 0.4
    max_reject: float = 0.7
    target_acceptance: float = 0.8
    acceptance: float | None = None  # adaptive: smoothed acceptance rate so far

    @property
    def threshold(self) -> float | None:
        """The draft-probability threshold below which drafting stops now (None: no such stop)."""
        return self.min_confidence if self.kind in ("confidence", "adaptive") else None

    def stop_after(self, confidences: list[float]) -> bool:
        """Stop drafting now, given the draft's probabilities of the tokens drafted so far this step?"""
        if self.kind in ("confidence", "adaptive"):
            return confidences[-1] < self.min_confidence
        if self.kind == "specdecpp":
            return 1.0 - math.prod(confidences) > self.max_reject
        return False

    def update(self, drafted: int, accepted: int) -> str:
        """Adapt gamma (or the threshold) after a verification; return why it changed (empty when it did not)."""
        if drafted == 0:
            return ""
        if self.kind == "adaptive":
            return self._adapt_threshold(accepted / drafted)
        if self.kind != "heuristic":
            return ""
        old = self.gamma
        self.gamma = min(old + 2, MAX_GAMMA) if accepted == drafted else max(1, old - 1)
        verdict = f"all {drafted} accepted" if accepted == drafted else f"{accepted} of {drafted} accepted"
        return f"{verdict}: gamma {old} -> {self.gamma}" if self.gamma != old else ""


    def _adapt_threshold(self, rate: float) -> str:
        prev = self.acceptance
        self.acceptance = rate if prev is None else ACCEPT_SMOOTHING * prev + (1 - ACCEPT_SMOOTHING) * rate
        old = self.min_confidence
        aim = old + THRESHOLD_STEP if self.acceptance < self.target_acceptance else old - THRESHOLD_STEP
        self.min_confidence = min(1.0, max(0.0, THRESHOLD_SMOOTHING * old + (1 - THRESHOLD_SMOOTHING) * aim))
        side = "below" if self.acceptance < self.target_acceptance else "at or above"
        return (f"acceptance {self.acceptance:.2f} {side} target {self.target_acceptance:.2f}: "
                f"threshold {old:.3f} -> {self.min_confidence:.3f}")


def make_schedule(gamma: int, schedule: str = "constant", min_confidence: float = 0.4,
                  max_reject: float = 0.7, target_acceptance: float = 0.8) -> Schedule:
    return Schedule(schedule, gamma, min_confidence, max_reject, target_acceptance)
