"""The registry of decoding methods: one module per method, each exporting METHOD."""

from __future__ import annotations

from playground.errors import PlaygroundError
from playground.methods import autoregressive, prompt_lookup, speculative
from playground.methods.base import DecodeConfig, Method, Param

METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (autoregressive, speculative, prompt_lookup)}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise PlaygroundError(f"unknown method {name!r} (available: {', '.join(METHODS)})") from None


__all__ = ["METHODS", "DecodeConfig", "Method", "Param", "get_method"]
