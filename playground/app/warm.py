"""Warming up at start: every tab's default models loaded and their methods run once before the first visitor clicks
(issue 25: on a busy machine a first Generate waited 66 s "warming up").

Each tab still warms up the exact settings of a click (engine.warm_up, once per setting and process), but what costs
seconds, reading the weights and the first calls of each kernel, is paid here, while the app is not yet serving."""

from __future__ import annotations

import sys
import time

from playground.app.common import EXAMPLES, NUMBER_EXAMPLES
from playground.app.diffusion import DIFFUSION_MODEL
from playground.app.method_inputs import first_method
from playground.compare import dag as compare_dag
from playground.compare import diffusion as compare_diffusion
from playground.compare import drafting
from playground.engine import Request, warm_up
from playground.errors import PlaygroundError
from playground.models import loading as models


def start_requests() -> list:
    """The default runs of Generate (its first method), Compare, Diffusion (slow and fast) and DAG (all four)."""
    generate = Request(prompt=EXAMPLES[0], model=models.DEFAULT_MODEL, method=first_method())  # its default draft
    return [generate,
            *drafting.requests(EXAMPLES[0], models.DEFAULT_MODEL, models.DEFAULT_DRAFT, 16),
            *compare_diffusion.requests(compare_diffusion.DEFAULT_PROMPT, DIFFUSION_MODEL, 32, "threshold",
                                        compare_diffusion.DEFAULT_THRESHOLD),
            *compare_dag.tab_requests(NUMBER_EXAMPLES[0], "lookahead", compare_dag.TAB_MODELS)]


def warm_up_at_start(log=sys.stderr) -> float:
    """Run each default request once (a model that is not shipped here is skipped); seconds it took."""
    started = time.perf_counter()
    for req in start_requests():
        try:
            warm_up(req)
        except PlaygroundError as exc:  # e.g. a model not trained yet: its tab says so when it is used
            print(f"warm-up: skipped {req.method} on {req.model}: {exc}", file=log)
    took = time.perf_counter() - started
    print(f"warmed up {len(models.loaded_names())} models in {took:.1f} s", file=log)
    return took
