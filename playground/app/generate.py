"""The Generate tab: decode a prompt with a method, quietly while it is timed, then play the run back at its pace,
next to autoregressive decoding of the same prompt if asked."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import NamedTuple

import gradio as gr

from playground import hosted
from playground.analysis import theory
from playground.app.api import named_inputs
from playground.app.common import EXAMPLES, NUMBER_EXAMPLES, failed, shown_if, warm_up_all, warn, warn_unstored
from playground.app.gpu import gpu
from playground.app.inputs import whole
from playground.app.method_inputs import (
    CHOOSERS,
    chooser_changed,
    chosen_params,
    compares_with_ar,
    draft_choices,
    first_method,
    method_changed,
    method_params,
    opening_choices,
    param_input,
    room_of,
    settled_draft,
    takes_draft,
)
from playground.app.panel import RunPanel, panel_values, play_back, run_panel, view_panel
from playground.app.visitors import Visitors
from playground.engine import MAX_NEW_TOKENS, RUNTIMES, Request, generate
from playground.methods import METHODS
from playground.models import loading as models
from playground.storage.recorder import Recorder
from playground.views import playback
from playground.views import run as views
from playground.views import theory as views_theory

PROGRESS_EVERY_S = 0.5  # how often the progress line of a run being timed is updated (a few bytes, no charts)


class GenerateTab(NamedTuple):
    prompt: gr.Textbox
    model: gr.Dropdown
    method: gr.Dropdown
    method_info: gr.Markdown
    draft: gr.Dropdown
    param_inputs: list  # one per method_params(), in its order
    max_new: gr.Slider
    temperature: gr.Slider
    top_k: gr.Number
    top_p: gr.Number
    seed: gr.Number
    runtime: gr.Dropdown
    against_ar: gr.Checkbox
    generate_btn: gr.Button
    stop_btn: gr.Button
    live: RunPanel
    explore_btn: gr.Button
    explored: gr.State  # theory.settings_of the run, for the Theory tab


def generate_tab(targets: list[str]) -> GenerateTab:
    """The Generate tab's inputs and its run panel; generate_events wires them."""
    first = first_method()
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            prompt = gr.Textbox(label="Prompt", lines=6, value=EXAMPLES[0], elem_id="prompt")
            gr.Examples([[e] for e in EXAMPLES + NUMBER_EXAMPLES[:2]], inputs=[prompt],
                        label="Example prompts (French numbers: for dag and gad)")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                stop_btn = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop-btn")
            against_ar = gr.Checkbox(True, label="then decode the prompt autoregressively, to compare",
                                     info="same settings, right after: identical output? how much "
                                          "faster? what the theory predicted", elem_id="against-ar")
            model = gr.Dropdown(targets, value=models.DEFAULT_MODEL, allow_custom_value=True,
                                label="Target model", info="shipped name, Hub id or local folder", elem_id="model")
            method = gr.Dropdown(list(METHODS), value=first, label="Method", elem_id="method")
            method_info = gr.Markdown(f"*{METHODS[first].summary}*")
            draft = gr.Dropdown(draft_choices(METHODS[first]), allow_custom_value=True,
                                value=models.draft_for(models.DEFAULT_MODEL, None, METHODS[first].draft_kinds[0]),
                                label="Draft model", visible=takes_draft(METHODS[first]), elem_id="draft")
            param_inputs = [param_input(p, first) for p in method_params().values()]
            with gr.Accordion("Sampling", open=True):
                max_new = gr.Slider(1, hosted.limit("max_new_tokens", MAX_NEW_TOKENS), 128, step=1,
                                    label="max new tokens", elem_id="max-new")
                temperature = gr.Slider(0, 2, 0, step=0.05, label="temperature", info="0 = greedy",
                                        elem_id="temperature")
                with gr.Row():
                    # precision None, not 0: Gradio would round a typed 1.5 to 2; whole() refuses it
                    top_k = gr.Number(0, label="top-k (0 = off)", elem_id="top-k")
                    top_p = gr.Number(1.0, label="top-p", minimum=0, maximum=1, elem_id="top-p")
                    seed = gr.Number(0, label="seed", elem_id="seed")
            with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                runtime = gr.Dropdown(list(RUNTIMES), value="auto", label="runtime", elem_id="runtime",
                                      info="what runs the causal models: lean (plain-torch Llama-family blocks, a "
                                           "static KV cache), transformers, or auto: lean where the model allows")
        with gr.Column(scale=2):
            live = view_panel("live", baseline=True)
            explore_btn = gr.Button("Explore this run in the Theory tab", visible=False, size="sm",
                                    elem_id="explore-btn")
            explored = gr.State(None)
    return GenerateTab(prompt, model, method, method_info, draft, param_inputs, max_new, temperature, top_k, top_p,
                       seed, runtime, against_ar, generate_btn, stop_btn, live, explore_btn, explored)


def generate_events(demo: gr.Blocks, visitors: Visitors, tab: GenerateTab) -> None:
    """Generate and Stop, and the inputs that follow the method, its choosers and the model; runs are stored as
    the visitor's (`visitors`)."""
    cancels: dict[str, threading.Event] = {}  # session -> the Stop signal of its running generation
    params = list(method_params())

    @gpu
    def run(request: gr.Request, prompt, model, method, draft, max_new, temperature, top_k, top_p, seed, runtime,
            against_ar, *param_values):
        """Decode quietly (a line of progress, nothing drawn while timed), then the autoregressive reference if
        asked, then play the run back at its pace and show it with the comparison."""
        cancel = cancels.setdefault(request.session_hash, threading.Event())
        try:
            uses = method in METHODS and takes_draft(METHODS[method])
            draft = settled_draft(method, model or "", draft) if uses else None
            req = Request(prompt=prompt or "", model=model or "", method=method or "", draft=draft or None,
                          max_new_tokens=whole(max_new, "max new tokens"), temperature=float(temperature or 0),
                          top_k=whole(top_k, "top-k"), top_p=float(top_p or 0), seed=whole(seed, "seed"),
                          params=chosen_params(method, dict(zip(params, param_values))), runtime=runtime or "auto")
            yield from decoded(visitors.recorder(request), req, against_ar, cancel)
        except Exception as exc:  # shown, never a traceback
            yield [*run_panel(None, [], status=views.error_html(failed(exc))), *no_comparison()]
        finally:
            cancels.pop(request.session_hash, None)

    def arm(request: gr.Request):
        """On Generate, before the run is queued: a Stop from now on reaches it, even while models load."""
        cancels[request.session_hash] = threading.Event()
        return gr.update(interactive=False), gr.update(interactive=True)

    def stop(request: gr.Request):
        if request.session_hash in cancels:
            cancels[request.session_hash].set()

    controls = [tab.prompt, tab.model, tab.method, tab.draft, tab.max_new, tab.temperature, tab.top_k, tab.top_p,
                tab.seed, tab.runtime, tab.against_ar, *tab.param_inputs]
    buttons = [tab.generate_btn, tab.stop_btn]
    idle = (gr.update(interactive=True), gr.update(interactive=False))
    running = tab.generate_btn.click(arm, None, buttons, queue=False).then(
        named_inputs(run, params), controls, [*tab.live.outputs, tab.explored, tab.explore_btn],
        show_progress="hidden", api_name="generate")
    running.then(lambda: idle, None, buttons, queue=False)
    running.failure(lambda: idle, None, buttons, queue=False)  # an input refused before the run started
    tab.stop_btn.click(stop, None, None, queue=False, api_name="stop")
    sampling = [tab.temperature, tab.top_k, tab.top_p, tab.seed]
    tab.method.change(method_changed, [tab.method, tab.model, tab.draft, tab.prompt],
                      [tab.model, tab.prompt, tab.draft, tab.method_info, tab.against_ar, *sampling,
                       *tab.param_inputs], queue=False)
    wanted = gr.State(128)  # the max new tokens a person asked for, restored once a model has room for it
    tab.max_new.input(lambda value: value, tab.max_new, wanted, queue=False)
    tab.model.change(room_of, [tab.model, wanted], tab.max_new, queue=False)
    demo.load(room_of, [tab.model, wanted], tab.max_new, queue=False)
    demo.load(opening_choices, None, tab.param_inputs, queue=False)
    choosers = [tab.param_inputs[params.index(name)] for name in CHOOSERS]
    for chosen in choosers:
        chosen.input(chooser_changed, [tab.method, *choosers], [*sampling, *tab.param_inputs], queue=False)


def no_comparison() -> list:
    """The outputs after the run panel with nothing to compare: the comparison panel and Explore hidden, no theory
    settings of the run."""
    hidden = gr.update(visible=False)
    return [hidden, None, hidden]


def quietly(events, what: str, shown_run=None):
    """Run `events` to their end, showing only a line of progress about `what` (at most every PROGRESS_EVERY_S);
    return the run (started, steps, finished). `shown_run`: the run the line is about, if not this one."""
    result, shown = (None, [], None), time.perf_counter()
    for result in views.run_so_far(events):
        started, steps, finished = result
        if finished is None and started and time.perf_counter() - shown >= PROGRESS_EVERY_S:
            note = playback.decoding_note(steps, what)
            yield [*panel_values(status=views.status_html(shown_run or started, None, note)), *no_comparison()]
            shown = time.perf_counter()
    return result


def decoded(recorder: Recorder, req: Request, against_ar: bool, cancel: threading.Event):
    """The Generate tab's outputs while `req` is decoded, recorded and played back, then autoregressive decoding of
    the same prompt if `against_ar` (and the method is lossless), and the comparison."""
    ar = dataclasses.replace(req, method="autoregressive", draft=None, params={})
    comparing = against_ar and compares_with_ar(req.method)
    yield [*panel_values(status=views.WARMING_UP), *no_comparison()]
    warm_up_all((req, ar) if comparing else (req,))
    started, steps, finished = yield from quietly(recorder.record(generate(req, cancel)), "decoding")
    baseline, done = None, finished is not None and finished.status == "finished"
    if finished and finished.error:
        warn(f"run {finished.run_id} failed: {finished.error}")
    if done and comparing:
        baseline = (yield from quietly(recorder.record(generate(ar, cancel)),
                                       "done; now autoregressive decoding, to compare", started))[2]
    warn_unstored(finished, baseline)
    if done:
        yield from play_back(started, steps, cancel, no_comparison())
    final = run_panel(started, steps, finished)
    if baseline is None:
        yield [*final, *no_comparison()]
    else:
        settings = theory.settings_of(steps, finished.stats, baseline.stats) \
            if baseline.status == "finished" else None
        yield [*final, shown_if(views_theory.baseline_html(steps, finished, baseline, req.temperature <= 0)),
               settings, gr.update(visible=settings is not None)]
