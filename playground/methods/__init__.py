"""The registry of decoding methods: one module per method family, each exporting its Method objects."""

from __future__ import annotations

from collections.abc import Callable

from playground.errors import PlaygroundError
from playground.methods import (
    autoregressive,
    copyspec,
    dag,
    diffusion,
    eagle,
    prompt_lookup,
    schedules,
    self_speculative,
    speculative,
    speculative_diffusion,
    token_recycling,
    tree_speculative,
)
from playground.methods.base import DecodeConfig, Method, Param

METHODS: dict[str, Method] = {m.name: m for m in (
    autoregressive.METHOD, speculative.METHOD, prompt_lookup.METHOD, self_speculative.METHOD,
    self_speculative.EARLY_EXIT, copyspec.METHOD, tree_speculative.METHOD, eagle.METHOD, token_recycling.METHOD,
    diffusion.METHOD, speculative_diffusion.METHOD, dag.METHOD, dag.GAD)}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise PlaygroundError(f"unknown method {name!r} (available: {', '.join(METHODS)})") from None


def chooser(method: str, name: str) -> tuple[str, tuple[str, ...]] | None:
    """The parameter that decides whether parameter `name` of `method` is used, and the values that use it (None:
    always used): the app shows an input only then, and a run's settings line lists it only then."""
    if method == diffusion.METHOD.name:
        used_by = diffusion.PARAM_STRATEGIES.get(name)  # a strategy's own parameter
        return ("strategy", used_by) if used_by else None
    if method == dag.METHOD.name:  # beam search's width and LM weight
        return ("strategy", ("beam",)) if name in ("beam", "lm_weight") else None
    if method == eagle.METHOD.name and name in eagle.TREE_SHAPES:  # a chain's, a dynamic tree's or a static one's
        return "tree", eagle.TREE_SHAPES[name]
    used_by = schedules.PARAM_SCHEDULES.get(name)  # a schedule's own parameter
    return ("schedule", used_by) if used_by else None


def param_error(pair: str) -> str:
    return f"--param takes key=value, got {pair!r}"


def parse_params(pairs: list[str], error: Callable[[str], str] = param_error) -> dict[str, str]:
    """['gamma=2', 'schedule=heuristic'] -> {'gamma': '2', 'schedule': 'heuristic'}, as the CLI's --param and bench's
    method specs write settings; values stay strings for the method's own Params to read. `error(pair)` is the
    message for a pair without '=' or without a key."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PlaygroundError(error(pair))
        params[key.strip()] = value.strip()
    return params


def used(method: str, name: str, settings: dict) -> bool:
    """Whether parameter `name` is used by a run of `method` with these `settings`: its chooser's value uses it, and
    the chooser is used itself (eagle: a schedule's parameter, only in a chain)."""
    rule = chooser(method, name)
    return rule is None or settings.get(rule[0]) in rule[1] and used(method, rule[0], settings)


__all__ = ["METHODS", "DecodeConfig", "Method", "Param", "chooser", "get_method", "parse_params", "used"]
