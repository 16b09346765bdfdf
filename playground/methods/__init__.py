"""The registry of decoding methods: one module per method family, each exporting its Method objects."""

from __future__ import annotations

from playground.errors import PlaygroundError
from playground.methods import (autoregressive, copyspec, dag, diffusion, prompt_lookup, self_speculative,
                                speculative, token_recycling, tree_speculative)
from playground.methods.base import DecodeConfig, Method, Param

METHODS: dict[str, Method] = {m.name: m for m in (
    autoregressive.METHOD, speculative.METHOD, prompt_lookup.METHOD, self_speculative.METHOD,
    self_speculative.EARLY_EXIT, copyspec.METHOD, tree_speculative.METHOD, token_recycling.METHOD,
    diffusion.METHOD, dag.METHOD, dag.GAD)}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise PlaygroundError(f"unknown method {name!r} (available: {', '.join(METHODS)})") from None


__all__ = ["METHODS", "DecodeConfig", "Method", "Param", "get_method"]
