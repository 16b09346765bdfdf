"""Hosted mode: the playground put in front of the public (a Hugging Face Space, a class demo), where every visitor
is a stranger sharing one small machine.

On when `$PLAYGROUND_PUBLIC` is 1 (`app.py --public` sets it), and by default on a Space (`$SPACE_ID` set; there
`PLAYGROUND_PUBLIC=0` turns it off). Off, nothing here changes anything. On:

- models: only the shipped ones and the Hub ids listed in `$PLAYGROUND_ALLOWED_MODELS` (comma-separated), never a
  local path; at most `$PLAYGROUND_MAX_MODELS` (default MAX_MODELS) stay loaded, the least recently used evicted;
- sizes: every size a request can ask for is bounded by LIMITS (engine.prepare and the tabs check them), so that one
  request cannot hold the machine for more than BOUND_S seconds (measured: README, "Hosted mode");
- History: each visitor sees and replays only their own runs, and the runs someone published to the gallery.

No other module of the playground is imported here: every layer may ask.
"""

from __future__ import annotations

import os
import re

from playground.errors import PlaygroundError

PUBLIC_ENV, SPACE_ENV = "PLAYGROUND_PUBLIC", "SPACE_ID"
ALLOWED_ENV, MAX_MODELS_ENV = "PLAYGROUND_ALLOWED_MODELS", "PLAYGROUND_MAX_MODELS"
MAX_MODELS = 10  # every shipped model (8, 78 MB of weights in all) and two allowed Hub models
QUEUE_ENV, QUEUE_MAX = "PLAYGROUND_QUEUE_MAX", 16  # hosted: at most this many requests wait; more are turned away
OFF = ("0", "false", "no", "off")

# The most a request may ask for in hosted mode, by setting name (a method parameter's own name, shared by the
# methods that have it). Chosen with the seconds measured in README "Hosted mode": with all of them at their
# limits, the heaviest click of any tab holds the machine for at most BOUND_S seconds.
LIMITS: dict[str, int] = {
    "prompt characters": 2_000,
    "max_new_tokens": 256,
    "gamma": 16,        # tokens drafted per step
    "nodes": 64,        # tree nodes verified per step (a static tree's `branching` counts too)
    "depth": 8,         # tree depth: draft forwards per step
    "topk": 4,          # nodes expanded per depth
    "k": 8,             # token_recycling: candidates kept per token
    "span": 32, "max_span": 32,  # copyspec: tokens copied per step
    "block": 256,       # diffusion: block length
    "steps": 256,       # diffusion: forwards for the whole canvas
    "candidates": 2,    # diffusion (freedave): canvases verified in one batched forward (default 4: lowered)
    "beam": 8,          # dag: beam width
    "curve thresholds": 3,   # the Diffusion tab: one more run of the prompt per threshold
    "stored MB per run": 8,  # what one run may add to the run database (steps, prompt, output)
}
BOUND_S = 70  # the longest one request may hold the machine with every size at its limit (README "Hosted mode")


def active() -> bool:
    """Whether the playground runs in hosted mode: $PLAYGROUND_PUBLIC, else whether it runs on a Space."""
    raw = os.environ.get(PUBLIC_ENV, "").strip().lower()
    if raw:
        return raw not in OFF
    return bool(os.environ.get(SPACE_ENV, "").strip())


def queue_size() -> int | None:
    """How many requests may wait for the app's decoding slot (Gradio shows each waiting visitor their place, and
    turns a request away, "queue is full", past it): $PLAYGROUND_QUEUE_MAX, else QUEUE_MAX in hosted mode, else no
    bound."""
    raw = os.environ.get(QUEUE_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise PlaygroundError(f"${QUEUE_ENV} must be a whole number of at least 1, not {raw!r}")
        return int(raw)
    return QUEUE_MAX if active() else None


def enable() -> None:
    """Hosted mode from now on, in this process and the ones it starts (`app.py --public`)."""
    os.environ[PUBLIC_ENV] = "1"


def limit(name: str, default: int | float) -> int | float:
    """What a setting whose own bound is `default` may reach now: the hosted limit where it is lower."""
    return min(default, LIMITS[name]) if active() and name in LIMITS else default


def refusal(name: str, value, bound) -> PlaygroundError:
    return PlaygroundError(f"{name} {value:g} is over the hosted limit of {bound:g} (this playground is public: "
                           f"each request is kept small)")


def check(name: str, value) -> None:
    """In hosted mode, refuse `value` of setting `name` above its limit, in one line naming both; else nothing."""
    if active() and name in LIMITS and isinstance(value, int | float) and value > LIMITS[name]:
        raise refusal(name, value, LIMITS[name])


def lowered_defaults(params: dict, given) -> dict:
    """`params` with each default the visitor did not set (`given`: the names they did) lowered to its hosted limit,
    so that changing nothing is never refused."""
    if not active():
        return params
    return {name: min(value, LIMITS[name]) if name in LIMITS and name not in given and isinstance(value, int | float)
            else value for name, value in params.items()}


def check_params(params: dict) -> None:
    """Every method parameter with a hosted limit; a static tree's `branching` by the nodes and depth it makes."""
    for name, value in params.items():
        check(name, value)
    widths = [int(w) for w in re.findall(r"\d+", str(params.get("branching", "")))]
    if widths:
        check("depth", len(widths))
        nodes, level = 0, 1
        for width in widths:
            level *= width
            nodes += level
        check("nodes", nodes)


def allowed_models() -> dict[str, str]:
    """The Hub ids hosted mode may load besides the shipped models: lower-cased id -> the id as listed."""
    ids = [i.strip() for i in os.environ.get(ALLOWED_ENV, "").split(",") if i.strip()]
    return {i.lower(): i for i in ids}


def max_models() -> int | None:
    """How many models stay loaded at most: $PLAYGROUND_MAX_MODELS, else MAX_MODELS in hosted mode, else no bound."""
    raw = os.environ.get(MAX_MODELS_ENV, "").strip()
    if not raw:
        return MAX_MODELS if active() else None
    if not raw.isdigit() or int(raw) < 1:
        raise PlaygroundError(f"${MAX_MODELS_ENV} must be a whole number of at least 1, got {raw!r}")
    return int(raw)
