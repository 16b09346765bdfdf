"""What the theory of speculative decoding predicts for a run, next to what the run measured (no Gradio here).

Leviathan et al. 2023 (arXiv 2211.17192), section 3: if each drafted token is accepted independently with the same
probability alpha, a step that drafts gamma tokens commits (1 - alpha^(gamma+1)) / (1 - alpha) tokens on average
(the accepted ones plus the target's own), and the ideal speedup over autoregressive decoding is
tau / (gamma * c + v): tau tokens per target forward, c the cost of a draft forward and v the cost of the verifying
forward, both in target forwards of autoregressive decoding.

alpha is estimated from the run itself: accepted / (accepted + rejections), the maximum-likelihood estimate for
i.i.d. acceptance cut off at each step's draft length. Where the run's acceptance is not i.i.d. (it falls with the
position in the draft, or comes in streaks, as copied drafts do) the measured tokens per forward part from the
predicted ones; `by_position` shows where.

Only chains have this theory: draft trees, diffusion and DAG runs get None.
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.events import Stats, Step


def chain_steps(steps: list[Step]) -> list[Step]:
    """The steps of a run that drafts chains, or [] for any other run (autoregressive, trees, canvases, graphs)."""
    if any(s.tree_tokens or s.positions or s.dag_path for s in steps) or not any(s.drafted for s in steps):
        return []
    return steps


def acceptance(steps: list[Step]) -> float | None:
    """alpha: accepted drafted tokens / drafted tokens the target looked at (accepted + the first rejected)."""
    accepted = sum(s.accepted for s in steps)
    rejected = sum(s.accepted < len(s.drafted) for s in steps)
    return accepted / (accepted + rejected) if accepted + rejected else None


def expected_tokens(alpha: float, gamma: int) -> float:
    """Tokens a step drafting `gamma` commits on average, each draft token accepted with probability alpha."""
    if alpha >= 1.0:
        return gamma + 1.0
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def ideal_speedup(alpha: float, gamma: int, c: float, v: float) -> float:
    """Leviathan et al.'s speedup of drafting `gamma` tokens a step: tokens per step over the step's cost in
    autoregressive target forwards (gamma draft forwards of cost c, one verification of cost v)."""
    return expected_tokens(alpha, gamma) / (gamma * c + v)


def predicted_tokens(steps: list[Step], alpha: float) -> list[float]:
    """Per step, the tokens theory expects for the length drafted then."""
    return [expected_tokens(alpha, len(s.drafted)) for s in steps]


def by_position(steps: list[Step]) -> list[tuple[int, int, int]]:
    """(position in the draft, steps whose target looked at it, steps that accepted it), from position 1."""
    longest = max((len(s.drafted) for s in steps), default=0)
    rows = []
    for i in range(1, longest + 1):
        reached = sum(len(s.drafted) >= i and s.accepted >= i - 1 for s in steps)
        if reached:
            rows.append((i, reached, sum(s.accepted >= i for s in steps)))
    return rows


@dataclass
class Prediction:
    alpha: float
    measured: float      # tokens per target forward, measured
    predicted: float     # tokens per target forward, i.i.d. theory at alpha and the lengths drafted
    gamma: float         # mean draft length


def predict(steps: list[Step]) -> Prediction | None:
    chain = chain_steps(steps)
    alpha = acceptance(chain)
    forwards = sum(s.target_forwards for s in chain)
    if alpha is None or not forwards:
        return None
    return Prediction(alpha=alpha, measured=sum(len(s.tokens) for s in chain) / forwards,
                      predicted=sum(predicted_tokens(chain, alpha)) / forwards,
                      gamma=sum(len(s.drafted) for s in chain) / len(chain))


@dataclass
class Speedup:
    """A run against an autoregressive run of the same model and prompt, timed one after the other."""
    measured: float          # tokens/s over autoregressive tokens/s
    ideal: float | None      # tau / (draft forwards per step * c + v) with the predicted tau; None: no theory
    from_costs: float        # the same with the measured tau: the speedup if forwards were all that took time
    c: float                 # one draft forward / one autoregressive target forward
    v: float                 # one verifying target forward / one autoregressive target forward
    draft_per_step: float    # draft forwards per step
    other_share: float       # share of the run's wall time outside draft and target forwards


def speedup(steps: list[Step], stats: Stats, baseline: Stats) -> Speedup | None:
    """The measured speedup over `baseline` (autoregressive), and the one the theory predicts from the costs."""
    if not (steps and stats.target_forwards and baseline.target_forwards and baseline.tokens_per_s
            and baseline.verify_s > 0):
        return None
    one = baseline.verify_s / baseline.target_forwards
    c = stats.draft_s / stats.draft_forwards / one if stats.draft_forwards else 0.0
    v = stats.verify_s / stats.target_forwards / one
    per_step = stats.draft_forwards / len(steps)
    cost = per_step * c + v  # one step, in autoregressive target forwards
    prediction = predict(steps)
    return Speedup(measured=stats.tokens_per_s / baseline.tokens_per_s,
                   ideal=prediction.predicted / cost if prediction else None,
                   from_costs=stats.new_tokens / len(steps) / cost, c=c, v=v, draft_per_step=per_step,
                   other_share=max(0.0, 1 - (stats.draft_s + stats.verify_s) / stats.wall_s) if stats.wall_s else 0.0)
