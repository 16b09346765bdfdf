"""The Gradio app (the top-level app.py runs it); the only part of the playground that imports Gradio.

- `build`: `build_app` puts the tabs in one gr.Blocks and wires what crosses tabs; `main` serves it.
- `generate`, `history`, `compare`, `diffusion`, `dag`, `theory`: one module per tab, each a function that lays
  the tab out (and wires it, or returns its parts for `build` to wire).
- `panel`: the panel that shows one run (Generate, History), its parts matched to views.RunView's by name, and a
  run played back in it. `method_inputs`: the Generate tab's inputs for a method. `inputs`: numbers typed out of
  range or not whole. `common`: what the tabs share.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network: no telemetry, no version check

from playground.app.build import build_app, css_text, main  # noqa: E402
from playground.app.inputs import whole  # noqa: E402

__all__ = ["build_app", "css_text", "main", "whole"]
