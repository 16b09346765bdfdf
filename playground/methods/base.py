"""What every decoding method shares: its parameter specs, its run settings, the stop rule, and the interfaces that
methods are assembled from.

A speculative method is a loop (`speculative.speculate` for chains, `tree_speculative.tree_speculate` for trees)
plus the parts it is given:

- a `Drafter` proposes a chain of tokens after the committed ones: a draft model (`speculative.ModelDrafter`), the
  target with sub-layers off (`self_speculative.SelfDrafter`), n-gram lookup (`prompt_lookup.LookupDrafter`) or
  copying (`copyspec.CopySpec`);
- a `TreeDrafter` grows a tree of alternatives (`tree_speculative.ModelTreeDrafter`,
  `token_recycling.RecyclingDrafter`);
- a `DraftSchedule` says how long the next chain is and when to stop drafting early (`schedules.Schedule`, or
  CopySpec, which is its own schedule).

For example, with a draft model and the heuristic schedule::

    drafter = ModelDrafter(draft_lm, cfg)                      # a Drafter
    schedule = make_schedule(gamma=4, schedule="heuristic")    # a DraftSchedule: gamma 4, +2 / -1 after each step
    for step in speculate(target_lm, drafter, prompt_ids, cfg, schedule):
        ...  # each step: drafter.propose(committed, schedule.gamma, gen, schedule.stop_after), one target forward,
             # drafter.rollback(kept length), schedule.update(drafted, accepted)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from playground.errors import PlaygroundError
from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET
from playground.runtime.sampling import Sampling
from playground.runtime.tree_attention import DraftTree


@dataclass(frozen=True)
class Param:
    """One method parameter: its default fixes its type; min/max/choices bound what a user may pass."""
    name: str
    default: int | float | str
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, raw) -> int | float | str:
        kind = type(self.default)
        if kind is int and isinstance(raw, float) and raw.is_integer():  # a number input's 4.0; 1.5 stays refused
            raw = int(raw)
        try:
            value = kind(raw) if kind is not int else int(str(raw), 10)
        except (TypeError, ValueError):
            raise PlaygroundError(f"parameter {self.name} must be {kind.__name__}, got {raw!r}") from None
        if kind is float and not math.isfinite(value):  # NaN passes every bound check below, and inf one of them
            raise PlaygroundError(f"parameter {self.name} must be a finite number, got {raw!r}")
        if self.choices is not None and value not in self.choices:
            raise PlaygroundError(f"parameter {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise PlaygroundError(f"parameter {self.name} must be between {self.min} and {self.max}, got {value}")
        return value


@dataclass
class DecodeConfig:
    """Settings shared by every method."""
    max_new_tokens: int = 128
    sampling: Sampling = field(default_factory=Sampling)
    eos_id: int | None = None   # stop after this token; None = never stop early
    mask_id: int | None = None  # the tokenizer's mask token (diffusion models)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    decode: Callable[..., Iterator]  # decode(target, draft, prompt_ids, cfg, **params) -> Iterator[Step]
    params: tuple[Param, ...] = ()
    needs_draft: bool = False
    # loads the draft model when one is given or when the target is the default model, but runs without one too
    uses_draft: Callable[[dict], bool] | None = None  # loads a draft when given one, if this says so for the params
    lossless: bool = True
    check: Callable[[dict], None] | None = None  # checks that span parameters; raises PlaygroundError
    check_model: Callable[[dict, object], None] | None = None  # checks against the loaded target model
    greedy_only: Callable[[dict], bool] | None = None  # says when these params cannot sample (temperature > 0)
    kinds: tuple[str, ...] = ("causal",)        # the kinds of target model it runs on (models.KINDS)
    draft_kinds: tuple[str, ...] = ("causal",)  # the kinds of draft model it takes

    def parse_params(self, raw: dict) -> dict:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise PlaygroundError(f"unknown parameter {unknown[0]!r} for method {self.name} (allowed: {allowed})")
        params = {name: p.parse(raw[name]) if name in raw else p.default for name, p in known.items()}
        if self.check:
            self.check(params)
        return params


def clip_to_budget(tokens: list[int], produced: int, cfg: DecodeConfig) -> tuple[list[int], bool]:
    """Cut newly committed `tokens` at the token budget and after end-of-text; say whether the run is done."""
    tokens = tokens[: cfg.max_new_tokens - produced]
    if cfg.eos_id is not None and cfg.eos_id in tokens:
        tokens = tokens[: tokens.index(cfg.eos_id) + 1]
        return tokens, True
    return tokens, produced + len(tokens) >= cfg.max_new_tokens


@dataclass
class Progress:
    """Where a verification loop stands: the committed ids (the prompt, then the output), the random stream it samples
    from (None: greedy), the new tokens so far, the index of the next step, and whether the run is done. `advance`
    ends every step the same way."""
    committed: list[int]
    gen: torch.Generator | None = None
    produced: int = 0
    index: int = 0
    done: bool = False

    def advance(self, tokens: list[int], done: bool) -> None:
        self.committed += tokens
        self.produced += len(tokens)
        self.index += 1
        self.done = done


def draft_budget(wanted: int, produced: int, cfg: DecodeConfig) -> int:
    """How many tokens (or tree levels) a step may draft: `wanted`, but never past the token budget, which the
    target's own token after the draft also needs a place in."""
    return min(wanted, cfg.max_new_tokens - produced - 1)


def accepted_prefix(drafted: list[int], choice: list[int]) -> int:
    """Greedy verification: how many drafted tokens the target keeps, the longest prefix of `drafted` equal to its
    own argmax `choice` at each position (`choice` has one more entry: the target's token after the last)."""
    k = 0
    while k < len(drafted) and drafted[k] == choice[k]:
        k += 1
    return k


def commit_verified(accepted: list[int], correction: int, drafted: int, produced: int, cfg: DecodeConfig,
                    whole: bool | None = None) -> tuple[list[int], list[str], bool]:
    """The end of a verification step, the same for chains, trees and gad: the `accepted` draft tokens and then the
    target's own `correction` are committed, cut at the token budget and after end-of-text.

    Each committed token's source: ACCEPTED for the draft's; the target's token is TARGET when nothing was drafted,
    BONUS when the whole draft was accepted (`whole`; by default all `drafted` tokens were), else REPLACEMENT.
    Returns (tokens, sources, done): e.g. accepted [5, 6] of 3 drafted, correction 9, budget left -> ([5, 6, 9],
    [ACCEPTED, ACCEPTED, REPLACEMENT], False)."""
    tokens, done = clip_to_budget(accepted + [correction], produced, cfg)
    whole = len(accepted) == drafted if whole is None else whole
    last = TARGET if drafted == 0 else BONUS if whole else REPLACEMENT
    return tokens, ([ACCEPTED] * len(accepted) + [last])[:len(tokens)], done


def step_counters(target, drafter=None) -> dict:
    """The forwards and seconds of the target and the drafter since the last step, as Step's fields."""
    draft_forwards, draft_s = drafter.take_counters() if drafter is not None else (0, 0.0)
    target_forwards, target_s = target.take_counters()
    return dict(target_forwards=target_forwards, target_s=target_s, draft_forwards=draft_forwards, draft_s=draft_s)


@dataclass
class Draft:
    """What a Drafter proposes for one step: the tokens, and what verification and the views need of them."""
    tokens: list[int] = field(default_factory=list)
    dists: list = field(default_factory=list)     # q_i per token; None = deterministic draft (q one-hot on x_i)
    shown: list[float] = field(default_factory=list)  # q_i(x_i) as the views show it
    source: int | None = None                     # where in the context a copied draft came from
    skipped: list[str] = field(default_factory=list)  # self-speculative drafts: the sub-layers switched off
    layers: int = 0
    gamma: int | None = None  # the length the drafter aimed at when it chose less than asked (copyspec: its span)


@runtime_checkable
class Drafter(Protocol):
    """Proposes a chain of draft tokens for `speculate` to verify."""

    def propose(self, committed: list[int], gamma: int, gen: torch.Generator | None,
                stop: Callable[[list[float]], bool]) -> Draft:
        """Up to `gamma` tokens to follow `committed` (prompt + output so far), drawn with `gen` when sampling;
        `stop(q so far)` may end the chain early (a schedule's confidence stop)."""

    def rollback(self, length: int) -> None:
        """Forget every token after the first `length` of the context: the target rejected them."""

    def take_counters(self) -> tuple[int, float]:
        """Draft forwards and seconds spent since the last call (0, 0.0 for a drafter without a model)."""


@runtime_checkable
class TreeDrafter(Protocol):
    """Grows a tree of alternatives for `tree_speculate` to verify in one target forward."""

    def grow(self, committed: list[int], depth: int) -> DraftTree:
        """A draft tree below the newest committed token, at most `depth` levels deep."""

    def verified(self, logits: torch.Tensor, tokens: list[int]) -> None:
        """The target's logits over `tokens` (the fresh context, then the tree's kept nodes): what a drafter that
        learns from the target (token recycling) reads; others ignore it."""

    def take_counters(self) -> tuple[int, float]:
        """Draft forwards and seconds spent since the last call."""


@runtime_checkable
class DraftSchedule(Protocol):
    """How long the next draft is, and when drafting stops early."""

    @property
    def gamma(self) -> int:
        """The most tokens the next step drafts."""

    @property
    def threshold(self) -> float | None:
        """The draft probability below which drafting stops now (None: no such stop); recorded with each step."""

    def stop_after(self, confidences: list[float]) -> bool:
        """Stop drafting now, given the draft probabilities of the tokens drafted so far this step?"""

    def update(self, drafted: int, accepted: int) -> str:
        """Adapt after a verification; return why something changed ('' when nothing did)."""
