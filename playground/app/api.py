"""The app's public API (gradio_client, `/gradio_api/info`): the endpoints a program may call, by stable names, and
every other event hidden from it. docs/API.md documents the public ones; tests/test_api.py drives them.

Gradio makes every event an endpoint, named after its function (`run`, `run_1`, ... `lambda_7`), so the names
shifted whenever a tab gained an event, and the UI's internal events (sliders, players, the inputs that follow the
method) were listed as if a program should call them.
"""

from __future__ import annotations

import inspect

import gradio as gr

# api_name -> what it does (docs/API.md says more: parameters and returns)
PUBLIC = {
    "generate": "the Generate tab: decode a prompt with a method, recorded, and the run shown",
    "stop": "stop this session's running /generate",
    "compare": "the Compare tab: chain, static tree and dynamic tree on one prompt",
    "diffusion": "the Diffusion tab: slow vs fast diffusion decoding, and the speed-quality curve",
    "dag": "the DAG tab: one French number phrase translated four ways",
    "history": "the History tab's tables: the stored runs (hosted mode: yours, and the gallery)",
    "replay": "one stored run, shown at its last step",
    "publish": "hosted mode: put one of your runs in the gallery",
    "save_html": "one stored run as a self-contained HTML page that replays it offline",
}
HIDDEN = "private"  # absent from the API docs, refused by gradio_client; the page still calls them by index


def hide_internal(demo: gr.Blocks) -> None:
    """Every event of `demo` whose api_name is not in PUBLIC hidden from the API listing."""
    for fn in demo.fns.values():
        if fn.api_name not in PUBLIC:
            fn.api_visibility = HIDDEN


def named_inputs(fn, names: list[str]):
    """`fn`, whose trailing `*values` take one input each, seen by Gradio as taking them by `names`: the API then
    names those parameters (`gamma`, `strategy`) instead of numbering them (`param_11`)."""
    signature = inspect.signature(fn)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    named = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    fn.__signature__ = signature.replace(parameters=[*fixed, *named])
    return fn
