"""The whole app: its tabs in one gr.Blocks, the style sheet, and the command that serves it."""

from __future__ import annotations

import os
import sys
import warnings

import gradio as gr

from playground import hosted
from playground.app.api import hide_internal
from playground.app.compare import compare_tab
from playground.app.dag import dag_tab
from playground.app.diffusion import diffusion_tab
from playground.app.generate import generate_events, generate_tab
from playground.app.gpu import use_zero_gpu
from playground.app.history import history_events, history_tab
from playground.app.inputs import name_range_errors
from playground.app.theory import theory_events, theory_tab
from playground.app.visitors import Visitors
from playground.app.warm import warm_up_at_start
from playground.errors import OneLineParser, PlaygroundError
from playground.models import loading as models
from playground.storage.degraded import Unrecorded, open_for_runs
from playground.storage.recorder import db_path
from playground.storage.retention import Retention
from playground.views import static_files
from playground.views.static_files import PLOTLY_JS

THEME = gr.themes.Soft(primary_hue="indigo", font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                       font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"])


def build_app(db: str, retention: Retention | None = None) -> gr.Blocks:
    # gradio (utils.safe_get_lock) makes a new event loop per lock it makes at build time and leaves the old ones to
    # the garbage collector, which warns of each; shown (PYTHONWARNINGS=default, as the browser tests run the app) from
    # a collection that happens to run inside an import, that warning made CPython 3.11's import lock raise KeyError
    # and the app exit before serving
    warnings.filterwarnings("ignore", "unclosed event loop", ResourceWarning)
    gr.set_static_paths([str(PLOTLY_JS)])
    name_range_errors()
    recorder = open_for_runs(db, retention=retention)
    if isinstance(recorder, Unrecorded):  # the app serves all the same: runs decode, each one warns it was not stored
        print(f"warning: runs will not be stored: {recorder.error}", file=sys.stderr)
    visitors = Visitors(recorder, private=hosted.active())  # hosted mode: each visitor's History is their own
    heads = {name for name in models.shipped_models() if models.shipped_kind(name) == "feature"}  # draft heads only
    shipped = [name for name in models.shipped_models() if name not in heads]
    targets = sorted({*shipped, models.DEFAULT_MODEL} - {models.DEFAULT_DRAFT})
    drafts = sorted({*shipped, models.DEFAULT_DRAFT})
    with gr.Blocks(title="Decoding Playground") as demo:
        gr.Markdown("# Decoding Playground\nWatch a language model decode, token by token: plain autoregressive "
                    "decoding next to speculative decoding, where a small draft model proposes tokens and the "
                    "target checks them in one forward pass. Every run is recorded and can be replayed.",
                    elem_id="title")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                generating = generate_tab(targets)
            with gr.Tab("History", id="history") as history:
                replaying = history_tab(visitors.private)
            with gr.Tab("Compare", id="compare"):
                compare_tab(visitors, targets, drafts)
            with gr.Tab("Diffusion", id="diffusion"):
                diffusion_tab(visitors, targets)
            with gr.Tab("DAG", id="dag"):
                dag_tab(visitors)
            with gr.Tab("Theory", id="theory"):
                theory = theory_tab()
        visitor = visitors.state()
        arrived = demo.load(visitors.arrive, visitor, visitor, queue=False)
        generate_events(demo, visitors, generating)
        theory_events(demo, theory, tabs, generating.explore_btn, generating.explored)
        history_events(visitors, replaying, history, arrived)
    hide_internal(demo)
    return demo


def css_text() -> str:
    """The page's style sheet (views.static_files.css_text: exported run pages use the same)."""
    return static_files.css_text()


def arguments(argv: list[str] | None = None):
    """app.py's options; where it serves comes from $GRADIO_SERVER_NAME and $GRADIO_SERVER_PORT when not given (the
    Dockerfile sets them)."""
    parser = OneLineParser(description="Decoding Playground web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--db", help="the run database: a SQLite file or a SQLAlchemy URL such as "
                                     "postgresql+psycopg://user:password@host/name (else $PLAYGROUND_DB, else "
                                     "playground.db)")
    parser.add_argument("--device", help="where the models run: cpu (default), cuda, cuda:N or mps "
                                         "(else $PLAYGROUND_DEVICE)")
    parser.add_argument("--keep-days", type=float, help="History: remove runs older than this (else "
                                                          "$PLAYGROUND_KEEP_DAYS, else keep them)")
    parser.add_argument("--keep-mb", type=float, help="History: then remove the oldest runs beyond this many MB (else "
                                                        "$PLAYGROUND_KEEP_MB, else no budget)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="serve at once, without first loading every tab's default models and running them once")
    parser.add_argument("--public", action="store_true",
                        help="hosted mode, for the public: shipped and allowed models only, bounded requests, each "
                             "visitor's History private (else $PLAYGROUND_PUBLIC=1; on by default on a Space)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    if args.public:
        hosted.enable()
    try:
        if args.device:
            models.use_device(args.device)
        on_zero_gpu = use_zero_gpu(args.device, models.shipped_models())  # there: cuda, the shipped models loaded now
        demo = build_app(db_path(args.db), Retention.from_env(args.keep_days, args.keep_mb))
        css = css_text()
        if not (args.no_warm_up or on_zero_gpu):  # (ZeroGPU runs nothing outside a visitor's GPU call)
            warm_up_at_start()
        waiting = hosted.queue_size()
    except PlaygroundError as exc:
        raise SystemExit(f"error: {exc}") from None
    demo.queue(default_concurrency_limit=1, max_size=waiting).launch(
        server_name=args.host, server_port=args.port, theme=THEME, css=css, footer_links=[])
