"""Numbers typed into the app's inputs: out of range (refused with a message that names the input), or not whole."""

from __future__ import annotations

import gradio as gr

from playground.app.common import WARNING_S
from playground.errors import PlaygroundError


def in_range(block: gr.Slider | gr.Number, payload):
    """`payload`, if it is within the input's range; else an error that names the input and its range (Gradio's own
    says only 'Value 5 is greater than maximum value 1')."""
    low, high = block.minimum, block.maximum
    if isinstance(payload, str | bool) or payload is not None and not isinstance(payload, int | float):
        # a program (gradio_client) can send anything; the comparisons below would raise a TypeError
        raise gr.Error(f"{block.label}: {payload!r} is not a number", duration=WARNING_S)
    if payload is not None and (low is not None and payload < low or high is not None and payload > high):
        span = f"from {low:g} to {high:g}" if low is not None and high is not None else \
            f"at least {low:g}" if low is not None else f"at most {high:g}"
        raise gr.Error(f"{block.label}: {payload:g} is out of range; it takes values {span}", duration=WARNING_S)
    return payload


def name_range_errors() -> None:
    """Make Gradio's Slider and Number refuse a number typed out of range with in_range's message. Their own check
    runs before any handler, so no handler can word it; a subclass instead would make Gradio write a .pyi stub
    beside this file at every start."""
    for cls in (gr.Slider, gr.Number):
        if not getattr(cls.preprocess, "names_ranges", False):
            def preprocess(self, payload, checked=cls.preprocess):
                return checked(self, in_range(self, payload))
            preprocess.names_ranges = True
            cls.preprocess = preprocess


def whole(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.5
    if not number.is_integer():
        raise PlaygroundError(f"{name} must be a whole number, got {value!r}")
    return int(number)
