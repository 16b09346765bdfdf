"""What every decoding method shares: its parameter specs, its run settings and the stop rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from playground.errors import PlaygroundError
from playground.runtime.sampling import Sampling


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
