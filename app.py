"""Decoding Playground web app: generate with a decoding method and watch every step, or replay a stored run.

    python app.py [--host 127.0.0.1] [--port 7860] [--db playground.db]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network: no telemetry, no version check

import gradio as gr  # noqa: E402
import plotly  # noqa: E402

from playground.analysis import theory  # noqa: E402
from playground.compare import dag as compare_dag  # noqa: E402
from playground.compare import diffusion as compare_diffusion  # noqa: E402
from playground.compare import methods as compare  # noqa: E402
from playground.engine import MAX_NEW_TOKENS, Request, generate, warm_up  # noqa: E402
from playground.errors import PlaygroundError  # noqa: E402
from playground.methods import METHODS, Param, dag, used  # noqa: E402
from playground.models import loading as models  # noqa: E402
from playground.runtime.dag_graph import STRATEGIES  # noqa: E402
from playground.storage.recorder import Recorder, db_path  # noqa: E402
from playground.views import dag as views_dag  # noqa: E402
from playground.views import diffusion as views_diffusion  # noqa: E402
from playground.views import drafts as views_drafts  # noqa: E402
from playground.views import playback  # noqa: E402
from playground.views import run as views  # noqa: E402
from playground.views import theory as views_theory  # noqa: E402
from playground.views import tree as views_tree  # noqa: E402
from playground.views.common import clip  # noqa: E402

UPDATE_EVERY_S = 0.15   # at most this often a run played back is re-drawn (plus the final one)
PROGRESS_EVERY_S = 0.5  # how often the progress line of a run being timed is updated (a few bytes, no charts)
SETTLE_S = 0.3          # before timing anything, time for the browser to finish drawing what it was last sent
WARNING_S = 6           # how long a warning pop-up stays: the panel keeps the message, so they need not pile up
REPLAY_TICK_S = 0.3
PLOT_MIN_WIDTH = 300  # two charts side by side where they fit, else one under the other
CPU_VERIFY = (1.22, 0.03)  # Theory tab: v₁ and dv as tiny-code measures them on a 2-core CPU (docs/BENCHMARKS.md)
# ... and on a GPU (an H200, batch size 1; BENCHMARKS "On a GPU"): verifying 4 to 33 tokens cost 1.06-1.25
# autoregressive forwards with no trend in the number of tokens, and the forward itself 6.6 ms for 2 tokens, 7.6 for 65
GPU_VERIFY = (1.15, 0.0)
DIFFUSION_MODEL = "tiny-code-diffusion"  # the Diffusion tab's default
EXAMPLES = [
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
    "import os\n\n\ndef list_python_files(folder):\n",
    "def is_prime(n):\n    if n < 2:\n        return False\n",
]
# the numbers models (dag, gad, the DAG tab) translate French number phrases to English
NUMBER_EXAMPLES = ["trois cent douze", "quatre mille deux cent cinquante-trois", "soixante et onze",
                   "neuf cent quatre-vingt-dix-neuf mille"]
NUMBER_KINDS = ("dag", "seq2seq")  # the kinds of model the numbers methods run on (models.KINDS)
APP_CSS = """
.gradio-container{max-width:1400px !important}
#title h1{margin-bottom:0}
#title p{color:#6b7280;margin-top:4px}
"""
# each update re-renders the chips: keep the newest tokens in sight instead of jumping back to the top
SCROLL_TO_NEWEST = ("watch('value', () => { const p = element.querySelector('.pg-panel'); "
                    "if (p) p.scrollTop = p.scrollHeight; });")
# the tree view animates with Plotly.js frames, which gr.Plot drops: it loads the plotly package's own copy (no CDN)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_HEAD = f'<script src="gradio_api/file={PLOTLY_JS}"></script>'
THEME = gr.themes.Soft(primary_hue="indigo", font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                       font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"])


def warm_up_all(requests) -> None:
    """Warm up each request's method and models (engine.warm_up), then give the browser time to draw what it was
    sent, so that neither first calls nor drawing slow down the timed runs that follow."""
    for request in requests:
        warm_up(request)
    time.sleep(SETTLE_S)


def progress_only(line: str, outputs: list) -> list:
    """While runs are timed only the line that says which one is running changes: drawing more, in a browser on
    the same cores, would slow the runs down."""
    return [line, *[gr.update()] * (len(outputs) - 1)]


def in_range(block: gr.Slider | gr.Number, payload):
    """`payload`, if it is within the input's range; else an error that names the input and its range (Gradio's own
    says only 'Value 5 is greater than maximum value 1')."""
    low, high = block.minimum, block.maximum
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


def warn(message: str) -> None:
    gr.Warning(message, duration=WARNING_S)


def compares_with_ar(method: str) -> bool:
    """A lossless method runs on models autoregressive decoding runs on, so its output can be compared with it."""
    return method != "autoregressive" and method in METHODS and METHODS[method].lossless


def takes_draft(method) -> bool:
    """Show (and send) the draft model for methods that need one or can use one."""
    return method.needs_draft or method.uses_draft is not None


def method_params() -> dict[str, Param]:
    """Every method parameter by name (one input each; a name shared by methods shares its input)."""
    return {p.name: p for m in METHODS.values() for p in m.params}


SHARED = {name for name, n in Counter(p.name for m in METHODS.values() for p in m.params).items() if n > 1}


CHOOSERS = ("schedule", "strategy")  # parameters whose value decides which other inputs show


def defaults(method: str) -> dict:
    return {p.name: p.default for p in METHODS[method].params}


def param_visible(name: str, method: str, values: dict) -> bool:
    """An input shows when the method has that parameter and the parameter that chooses it (if any) allows it."""
    chosen = METHODS.get(method)
    if chosen is None or all(p.name != name for p in chosen.params):
        return False
    return used(method, name, values)


def param_updates(method: str, values: dict | None = None) -> list[dict]:
    """Updates of every parameter input for `method` (in method_params order).

    With no values given, the method was just chosen: the inputs it shares with other methods take its defaults
    and help (prompt_lookup's gamma is 8, speculative's 4), its own keep what was typed in them.
    """
    own = {p.name: p for p in METHODS[method].params}
    if values is None:
        values = defaults(method)
        return [gr.update(visible=param_visible(n, method, values),
                          **(dict(value=own[n].default, info=own[n].help) if n in own and n in SHARED else {}),
                          **(dict(choices=list(own[n].choices)) if n in own and n in SHARED and own[n].choices else {}))
                for n in method_params()]
    return [gr.update(visible=param_visible(n, method, values)) for n in method_params()]


def sampling_updates(method: str, values: dict) -> list[dict]:
    """Updates of the temperature, top-k, top-p and seed inputs: a method that decodes greedily only with these
    parameter values (dag, gad, FreeDave) sets temperature 0 and locks them, saying why; any other unlocks them."""
    chosen = METHODS[method]
    params = {**defaults(method), **{k: v for k, v in values.items() if k in defaults(method)}}
    if chosen.greedy_only and chosen.greedy_only(params):
        why = f"{method} decodes greedily" + (f" with strategy {params['strategy']}" if "strategy" in params else "")
        return [gr.update(value=0, interactive=False, info=why), *[gr.update(interactive=False)] * 3]
    return [gr.update(interactive=True, info="0 = greedy"), *[gr.update(interactive=True)] * 3]


def suited_inputs(method: str, model: str, draft: str, prompt: str) -> list[dict]:
    """Updates of the model, draft and prompt inputs for `method`: a shipped model (or draft) of a kind the method
    cannot run swaps for the shipped one it can (models.KINDS; the draft: that model's default), and an example
    prompt of the other task (code or French numbers) for this task's first example, so choosing the method is
    enough to get a run that works. What a person typed (another model, a prompt of their own) is left alone."""
    chosen = METHODS[method]
    kind = models.shipped_kind(model)
    target = models.KINDS[chosen.kinds[0]][1] if kind is not None and kind not in chosen.kinds else model
    draft_kind = models.shipped_kind(draft)
    new_draft = models.DEFAULT_DRAFTS.get(target) if draft_kind is not None and (
        draft_kind not in chosen.draft_kinds or target != model) else draft
    numbers = models.shipped_kind(target) in NUMBER_KINDS
    examples = (EXAMPLES, NUMBER_EXAMPLES) if numbers else (NUMBER_EXAMPLES, EXAMPLES)
    return [gr.update(value=target) if target != model else gr.update(),
            gr.update(value=new_draft) if new_draft and new_draft != draft and takes_draft(chosen) else gr.update(),
            gr.update(value=examples[1][0]) if prompt in examples[0] else gr.update()]


def room_of(model: str, wanted) -> dict:
    """The max-new-tokens slider, ending where the shipped model's context does (other models: the engine's limit)."""
    room = models.shipped_room(model)
    top = min(MAX_NEW_TOKENS, room) if room else MAX_NEW_TOKENS
    return gr.update(maximum=top, value=min(int(wanted or 1), top),
                     info=f"at most {top} with {model.strip()}" if room else None)


def param_input(p: Param, method: str):
    """The input of parameter `p`, as `method` (the one chosen at start) sets it."""
    p = next((q for q in METHODS[method].params if q.name == p.name), p)
    common = dict(label=p.name, info=p.help, value=p.default, visible=param_visible(p.name, method, defaults(method)),
                  elem_id=f"param-{p.name}")
    if p.choices:
        return gr.Dropdown(list(p.choices), **common)
    if isinstance(p.default, str):
        return gr.Textbox(**common)
    if p.min is not None and p.max is not None:
        return gr.Slider(p.min, p.max, step=1 if isinstance(p.default, int) else None, **common)
    return gr.Number(precision=None, **common)  # not 0: Gradio would round 1.5 to 2; Param.parse refuses it


def chosen_params(method: str, values: dict) -> dict:
    """The values of the inputs that belong to `method` (the others are hidden)."""
    chosen = METHODS.get(method)
    return {p.name: values[p.name] for p in chosen.params} if chosen else {}


def whole(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.5
    if not number.is_integer():
        raise PlaygroundError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def tree_view(elem_id: str) -> gr.HTML:
    """A box that draws an animated figure (views_tree.tree_html, views_diffusion.canvas_html) with Plotly.js;
    hidden until there is one."""
    return gr.HTML(visible=False, js_on_load=views_tree.ANIMATED_JS, head=PLOTLY_HEAD, elem_id=elem_id)


PICK_A_RUN = "Pick a run above to replay it."


def view_panel(prefix: str, empty: str | None = None, baseline: bool = False) -> list:
    """The components that show one run; the Generate and History tabs each get one, filled by views.run_view.
    `empty`: what the status says before there is a run. With `baseline`, one more at the end, under the stats:
    the run against autoregressive decoding of the same prompt (views_theory.baseline_html)."""
    status = gr.HTML(views.status_html(None, **({"empty": empty} if empty else {})), elem_id=f"{prefix}-status")
    chips = gr.HTML(views.chips_html([]), elem_id=f"{prefix}-chips", js_on_load=SCROLL_TO_NEWEST)
    step = gr.HTML(views.step_html(None), elem_id=f"{prefix}-step")
    stats = gr.HTML(views.stats_html([]), elem_id=f"{prefix}-stats")
    against = [gr.HTML(visible=False, elem_id=f"{prefix}-baseline")] if baseline else []
    # diffusion: the canvas, animated; tree methods: the draft tree, animated, and how big it was against what got
    # accepted
    canvas = tree_view(f"{prefix}-canvas")
    tree = tree_view(f"{prefix}-tree")
    graph = dag_view(f"{prefix}-dag")  # dag and gad: the graph of the one parallel pass
    with gr.Row(equal_height=True):
        tree_size = chart(f"{prefix}-tree-size")
        depth_acceptance = chart(f"{prefix}-depth-acceptance")
    with gr.Row(equal_height=True):
        accepted = chart(f"{prefix}-accepted", views.accepted_figure([]))
        progress = chart(f"{prefix}-progress", views.progress_figure([]))
    # how the run drafts: each shown only where it applies (panel() sets visibility on every update)
    with gr.Row(equal_height=True):
        drafts = chart(f"{prefix}-drafts")
        confidence = chart(f"{prefix}-confidence")
        theory = chart(f"{prefix}-theory")  # acceptance by draft position (chains) or sibling rank (trees)
    layers = gr.HTML(visible=False, js_on_load=None, elem_id=f"{prefix}-layers")
    copies = gr.HTML(visible=False, js_on_load=views_drafts.COPY_HOVER_JS, elem_id=f"{prefix}-copies")
    return [status, chips, step, stats, accepted, progress, drafts, confidence, layers, copies, tree, tree_size,
            depth_acceptance, canvas, theory, graph, *against]


def chart(elem_id: str, figure=None) -> gr.Plot:
    """One chart of a run, hidden until it has a figure; two share a row where both fit, else they stack."""
    return gr.Plot(figure, show_label=False, visible=figure is not None, min_width=PLOT_MIN_WIDTH, elem_id=elem_id)


def dag_view(elem_id: str) -> gr.HTML:
    """A box that draws views_dag.dag_html (its sliders and clicks run in the page); hidden until there is one."""
    return gr.HTML(visible=False, js_on_load=views_dag.DAG_JS, head=PLOTLY_HEAD, elem_id=elem_id)


def shown_if(value) -> dict:
    return gr.update(visible=False) if value is None else gr.update(value=value, visible=True)


def panel(view: views.RunView) -> list:
    """A RunView as the values of the first view_panel components: the optional views hidden where they do not
    apply."""
    return [shown_if(value) if name in views.OPTIONAL else value for name, value in zip(view._fields, view)]


def run_panel(started, steps: list, finished=None, total: int | None = None, note: str = "") -> list:
    """The values of all of view_panel's components after `steps`: views.run_view's, then the DAG graph (shown for
    runs whose steps carry one: dag, gad). `note`: said in the status line instead of the step count."""
    view = views.run_view(started, steps, finished, total)
    if note:
        view = view._replace(status=views.status_html(started, finished, note))
    return [*panel(view), shown_if(views_dag.dag_html(started, steps))]


def play_back(started, steps: list, cancel: threading.Event, tail: list):
    """A run's panel after more and more of its recorded steps, at the pace they were made (faster for a long run:
    playback.pace), up to the last but one: the caller shows the last. `tail`: the outputs after the panel."""
    ends = playback.step_ends(steps)
    speed, begun, shown = playback.pace(ends), time.perf_counter(), 0
    while not cancel.is_set():
        shown = max(shown + 1, playback.steps_by(ends, (time.perf_counter() - begun) * speed))
        if shown >= len(steps):
            return
        drawn = time.perf_counter()
        yield [*run_panel(started, steps[:shown], note=playback.playing_note(shown, len(steps), speed)), *tail]
        time.sleep(max(UPDATE_EVERY_S, 3 * (time.perf_counter() - drawn)))  # drawing: at most 1/4 of the time


def compare_tab(recorder: Recorder, targets: list[str], drafts: list[str]) -> None:
    """The Compare tab: one prompt, decoded greedily as a chain, a static tree and a dynamic tree, side by side."""
    gr.Markdown("### Static vs dynamic vs chain on the same prompt, side by side\nGreedy decoding, one method after "
                "the other, each recorded (see History), after autoregressive decoding of the prompt as the "
                "reference. All must write exactly the same text; what differs is how many target forwards they "
                "need, and the time that costs.")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=5, value=EXAMPLES[1], scale=3, elem_id="cmp-prompt")
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(targets, value=models.DEFAULT_MODEL, allow_custom_value=True, label="Target model",
                                elem_id="cmp-model")
            draft = gr.Dropdown(drafts, value=models.DEFAULT_DRAFT, allow_custom_value=True, label="Draft model",
                                elem_id="cmp-draft")
            max_new = gr.Slider(1, 512, 64, step=1, label="max new tokens", elem_id="cmp-max-new")
            button = gr.Button("Run all three", variant="primary", elem_id="compare-btn")
    outputs = [gr.HTML(compare.verdict_html([]), elem_id="cmp-verdict")]
    with gr.Row(equal_height=False):
        for c in compare.CONTENDERS:
            with gr.Column(min_width=320, elem_id=f"cmp-{c.key}"):
                gr.Markdown(f"#### {c.title}")
                outputs += [gr.HTML(compare.stats_html(None), elem_id=f"cmp-{c.key}-stats"),
                            gr.HTML(views.chips_html([]), elem_id=f"cmp-{c.key}-chips")]
                if c.key == "chain":
                    gr.HTML(compare.chain_note())
                else:
                    outputs.append(tree_view(f"cmp-{c.key}-tree"))

    def shown(results: list, running: str = "") -> list:
        """`results`: the reference's run, then each contender's (None: not run yet)."""
        stats = [r[2].stats if r and r[2] else None for r in results]
        out = [compare.verdict_html([r[2] if r else None for r in results], running)]
        for c, result in zip(compare.CONTENDERS, results[1:]):
            started, steps, finished = result or (None, [], None)
            out += [compare.stats_html(finished.stats if finished else None,
                                       None if c.key == "chain" else stats[1], stats[0]),
                    views.chips_html(steps)]
            if c.key != "chain":
                tree = views_tree.tree_html(started, steps, overview=True)
                out.append(gr.update(value=tree, visible=tree is not None))
        return out

    def run(prompt, model, draft, max_new):
        runs = (compare.REFERENCE, *compare.CONTENDERS)
        results: list = [None] * len(runs)
        try:
            requests = compare.requests(prompt or "", model or "", draft or None, whole(max_new, "max new tokens"))
            yield shown(results, "a short warm-up of each method")
            warm_up_all(requests)
            for i, (c, request) in enumerate(zip(runs, requests)):
                yield progress_only(compare.verdict_html([r[2] if r else None for r in results], c.title), outputs)
                results[i] = compare.collect(recorder.record(generate(request)))
            yield shown(results)
        except Exception as exc:  # shown, never a traceback
            message = str(exc) if isinstance(exc, PlaygroundError) else f"{type(exc).__name__}: {exc}"
            warn(message)
            yield [views.error_html(message), *shown(results)[1:]]

    button.click(run, [prompt, model, draft, max_new], outputs, show_progress="hidden")


def diffusion_tab(recorder: Recorder, targets: list[str]) -> None:
    """The Diffusion tab: one prompt decoded by a diffusion model the slow way and a fast way, side by side, and a
    speed-quality curve across thresholds."""
    cd = compare_diffusion
    gr.Markdown("### Slow vs fast diffusion decoding on the same prompt\nThe slow setting commits one token per "
                "forward (`fixed_steps`, steps 0); the fast one commits several per forward. Both are recorded "
                "(see History). Parallel decoding is lossy: agreement with the slow output and generative perplexity "
                "under the autoregressive tiny-code say what the speed cost. The curve decodes the prompt once per "
                "threshold (not recorded).")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=5, value=EXAMPLES[0], scale=3, elem_id="dlm-prompt")
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(targets, value=DIFFUSION_MODEL, allow_custom_value=True, label="Diffusion model",
                                elem_id="dlm-model")
            with gr.Row():
                strategy = gr.Dropdown(list(cd.FAST_STRATEGIES), value="threshold", label="fast strategy",
                                       elem_id="dlm-strategy")
                threshold = gr.Slider(0.05, 1, 0.9, step=0.01, label="threshold", elem_id="dlm-threshold")
            with gr.Row():
                max_new = gr.Slider(1, 256, 32, step=1, label="max new tokens", elem_id="dlm-max-new")
                block = gr.Slider(1, 256, 32, step=1, label="block", elem_id="dlm-block")
            thresholds = gr.Textbox(", ".join(f"{t:g}" for t in cd.THRESHOLDS), label="curve thresholds",
                                    info="empty: no curve", elem_id="dlm-thresholds")
            button = gr.Button("Run slow, fast and the curve", variant="primary", elem_id="dlm-btn")
    outputs = [gr.HTML(cd.verdict_html(None, None), elem_id="dlm-verdict")]
    with gr.Row(equal_height=False):
        for key, title in (("slow", "Slow · fixed_steps, one token per forward"), ("fast", "Fast")):
            with gr.Column(min_width=320, elem_id=f"dlm-{key}"):
                gr.Markdown(f"#### {title}")
                outputs += [gr.HTML(cd.stats_html(None), elem_id=f"dlm-{key}-stats"),
                            gr.HTML(views_diffusion.text_html(None, []), elem_id=f"dlm-{key}-text"),
                            tree_view(f"dlm-{key}-canvas")]
    outputs.append(gr.Plot(cd.curve_figure([], None), show_label=False, elem_id="dlm-curve"))

    def shown(runs: list, judged: list, points: list, running: str = "") -> list:
        out = [cd.verdict_html(*judged, running)]
        for run, mine in zip(runs, judged):
            started, steps, finished = run or (None, [], None)
            canvas = views_diffusion.canvas_html(started, steps, finished is not None)
            out += [cd.stats_html(mine, judged[0] if mine is not judged[0] else None),
                    views_diffusion.text_html(started, steps, finished is not None),
                    gr.update(value=canvas, visible=canvas is not None)]
        return [*out, cd.curve_figure(points, judged[0])]

    def run(prompt, model, strategy, threshold, max_new, block, thresholds):
        runs, judged, points = [None, None], [None, None], []
        try:
            n, size = whole(max_new, "max new tokens"), whole(block, "block")
            wanted = cd.parse_thresholds(thresholds) if (thresholds or "").strip() else []
            requests = cd.requests(prompt or "", model or "", n, strategy, float(threshold), size)
            yield shown(runs, judged, points, "a short warm-up of each setting")
            warm_up_all(requests)
            for i, (name, request) in enumerate(zip(("the slow setting", f"the fast setting ({strategy})"),
                                                    requests)):
                yield progress_only(cd.verdict_html(*judged, name), outputs)
                runs[i] = compare.collect(recorder.record(generate(request)))
                started, _, finished = runs[i]
                if finished.status != "finished":
                    raise PlaygroundError(finished.error or f"the run was {finished.status}")
                judged[i] = cd.judge(started, finished, runs[0][2].token_ids)
            for t in wanted:
                yield progress_only(cd.verdict_html(*judged, f"the curve: threshold {t:g}"), outputs)
                if strategy == "threshold" and t == float(threshold):
                    points.append((t, judged[1]))  # already decoded
                    continue
                started, _, finished = compare.collect(generate(cd.curve_request(prompt, model, n, t, size)))
                points.append((t, cd.judge(started, finished, runs[0][2].token_ids)))
            yield shown(runs, judged, points)
        except Exception as exc:  # shown, never a traceback
            message = str(exc) if isinstance(exc, PlaygroundError) else f"{type(exc).__name__}: {exc}"
            warn(message)
            yield [views.error_html(message), *shown(runs, judged, points)[1:]]

    button.click(run, [prompt, model, strategy, threshold, max_new, block, thresholds], outputs,
                 show_progress="hidden")


def theory_tab() -> tuple:
    """The Theory tab: Leviathan et al.'s formulas as curves over the draft length, for the acceptance and costs set
    with its sliders (no model runs)."""
    gr.Markdown("### What theory predicts for a draft chain\nIf each drafted token is accepted with probability α, "
                "independently, a step drafting γ tokens commits (1 − α^(γ+1)) / (1 − α) tokens for one target "
                "forward, and costs γ draft forwards (each c of an autoregressive forward) plus one verification "
                "(v; γ = 0 is autoregressive decoding, v = 1). Their ratio is the ideal speedup (Leviathan et al. "
                "2023). The sliders start at what `tiny-code-draft` and `tiny-code` measure on a 2-core CPU "
                "(docs/BENCHMARKS.md): verifying γ + 1 tokens costs more than one token there, and more with every "
                "token; on a GPU (measured on an H200) it costs about 1.15 forwards however many tokens are verified. "
                "The Generate tab shows α, c and v of each run next to this.")
    with gr.Row():
        alpha = gr.Slider(0.01, 0.99, 0.71, step=0.01, label="α: acceptance of a drafted token", elem_id="th-alpha")
        c = gr.Slider(0, 1, 0.24, step=0.01, label="c: one draft forward, in target forwards", elem_id="th-c")
    with gr.Row():
        v1 = gr.Slider(0.5, 3, CPU_VERIFY[0], step=0.01,
                       label="v₁: verifying γ = 1 (two tokens), in target forwards",
                       elem_id="th-v1")
        dv = gr.Slider(0, 0.3, CPU_VERIFY[1], step=0.005,
                       label="dv: added per further drafted token (v = v₁ + dv·(γ − 1))", elem_id="th-dv")
        max_gamma = gr.Slider(1, 32, 12, step=1, label="largest γ drawn", elem_id="th-max-gamma")
    with gr.Row():
        cpu_btn = gr.Button(f"Verification as on this CPU (v₁ {CPU_VERIFY[0]}, dv {CPU_VERIFY[1]})", size="sm",
                             elem_id="th-cpu")
        gpu_btn = gr.Button(f"Verification as measured on a GPU (H200, batch size 1: v₁ {GPU_VERIFY[0]}, "
                            f"dv {GPU_VERIFY[1]:g})", size="sm", elem_id="th-gpu")
    summary = gr.HTML(elem_id="th-summary")
    with gr.Row(equal_height=True):
        tokens = gr.Plot(show_label=False, min_width=PLOT_MIN_WIDTH, elem_id="th-tokens")
        speed = gr.Plot(show_label=False, min_width=PLOT_MIN_WIDTH, elem_id="th-speedup")
    gr.Markdown("#### The best tree (Sequoia)\nA tree tries a node's children in turn, likeliest first: the k-th is "
                "accepted with probability p_k when the ones before it were not (positional acceptance; p_1 is α "
                "above). Sequoia's dynamic program finds the tree with the most expected tokens within a node "
                "budget and a depth; each level costs one draft forward (c), and verifying n nodes costs v as for "
                "a chain of n. The Generate tab measures p_k of tree runs (acceptance by sibling rank).")
    with gr.Row():
        p2 = gr.Slider(0, 0.99, 0.39, step=0.01, label="p₂: second child, when the first is turned down",
                       elem_id="th-p2")
        p3 = gr.Slider(0, 0.99, 0.15, step=0.01, label="p₃: third child", elem_id="th-p3")
        nodes = gr.Slider(1, 64, 12, step=1, label="node budget", elem_id="th-nodes")
        depth = gr.Slider(1, 12, 4, step=1, label="depth", elem_id="th-depth")
    tree_summary = gr.HTML(elem_id="th-tree-summary")
    tree = gr.Plot(show_label=False, elem_id="th-tree")
    sliders = [alpha, c, v1, dv, max_gamma, p2, p3, nodes, depth]
    outputs = [summary, tokens, speed, tree_summary, tree]
    explored = gr.State(None)  # a run explored here (app.explore): (mean draft length, measured speedup)

    def drawn(a, cost, v, slope, largest, second, third, budget, levels, run=None):
        a, cost, v, slope = float(a), float(cost), float(v), float(slope)
        curves = views_theory.explorer(a, cost, v, slope, whole(largest, "largest γ"), run)
        best = views_theory.best_tree_view([a, float(second), float(third)], whole(budget, "node budget"),
                                           whole(levels, "depth"), cost, v, slope)
        return *curves, *best

    for slider in sliders:  # .input, not .change: a run explored here sets several sliders at once (app.explore)
        slider.input(drawn, [*sliders, explored], outputs, queue=False, show_progress="hidden")

    def verifying(v_one, slope, *values):
        """v₁ and dv set, every other slider kept; the curves and the best tree drawn for them."""
        values = [*values[:2], v_one, slope, *values[4:]]
        return *values[:len(sliders)], *drawn(*values)

    for btn, (v_one, slope) in ((cpu_btn, CPU_VERIFY), (gpu_btn, GPU_VERIFY)):
        btn.click(lambda *values, v=v_one, d=slope: verifying(v, d, *values), [*sliders, explored],
                  [*sliders, *outputs], queue=False, show_progress="hidden")
    return drawn, sliders, explored, outputs


def dag_tab(recorder: Recorder) -> None:
    """The DAG tab: one French number phrase translated by the DA-Transformer, the autoregressive baseline, gad (the
    baseline verifying the DAG's draft) and the plain NAT, side by side, with the DAG's graph."""
    gr.Markdown("### DAG vs autoregressive on the same phrase\nThe toy task: French number phrases to English. A "
                "DA-Transformer builds a graph of tokens in one parallel pass and a strategy picks a path through it; "
                "the autoregressive baseline writes one token per forward; gad lets the baseline verify the DAG's "
                "output as a draft (same output as the baseline, fewer forwards); the NAT is the same network "
                "without the graph. All four are recorded (see History); times leave out model loading and a first, "
                "unrecorded warm-up pass of each model.")
    names = compare_dag.TAB_MODELS
    with gr.Row():
        with gr.Column(scale=3):
            phrase = gr.Textbox(label="French number phrase", value=NUMBER_EXAMPLES[0], elem_id="dag-phrase",
                                info="words from zéro to neuf cent quatre-vingt-dix-neuf mille neuf cent quatre-vingt-dix-neuf")
            gr.Examples([[e] for e in NUMBER_EXAMPLES], inputs=[phrase], label="Examples")
        with gr.Column(scale=2, min_width=300):
            strategy = gr.Dropdown(list(STRATEGIES), value=dag.STRATEGY.default, label="DAG decoding strategy",
                                   info=dag.STRATEGY.help, elem_id="dag-strategy")
            with gr.Accordion("Models", open=False):
                labels = {"dat": "DA-Transformer", "ar": "autoregressive baseline", "nat": "NAT",
                          "drafter": "gad's drafter (a DA-Transformer distilled from the baseline)"}
                picks = [gr.Dropdown([names[k]], value=names[k], allow_custom_value=True, label=labels[k],
                                     elem_id=f"dag-model-{k}") for k in names]
            button = gr.Button("Translate four ways", variant="primary", elem_id="dag-btn")
    outputs = [gr.HTML(compare_dag.verdict_html({}), elem_id="dag-verdict")]
    with gr.Row(equal_height=False):
        for side in compare_dag.SIDES:
            with gr.Column(min_width=240, elem_id=f"dag-{side.key}"):
                gr.Markdown(f"#### {side.title}\n*{side.note}*")
                outputs.append(gr.HTML(compare_dag.side_html(side.key, None), elem_id=f"dag-{side.key}-side"))
    outputs.append(dag_view("dag-graph"))

    def shown(runs: dict, running: str = "") -> list:
        ar = runs["ar"][2] if runs["ar"] else None
        started, steps, _ = runs["dag"] or (None, [], None)
        return [compare_dag.verdict_html(runs, running), *(compare_dag.side_html(s.key, runs[s.key], ar)
                                                         for s in compare_dag.SIDES),
                shown_if(views_dag.dag_html(started, steps))]

    def run(phrase, strategy, *picked):
        runs = {s.key: None for s in compare_dag.SIDES}
        chosen = {key: name or "" for key, name in zip(names, picked)}
        try:
            if not (phrase or "").strip():
                raise PlaygroundError("the phrase is empty: write a French number, such as 'trois cent douze'")
            requests = compare_dag.tab_requests(phrase.strip(), strategy, chosen)
            yield shown(runs, "a short warm-up of each side")
            warm_up_all(requests)
            for side, request in zip(compare_dag.SIDES, requests):
                yield progress_only(compare_dag.verdict_html(runs, side.title), outputs)
                runs[side.key] = compare.collect(recorder.record(generate(request)))
                if runs[side.key][2].status != "finished":
                    raise PlaygroundError(runs[side.key][2].error or f"the {side.title} run failed")
            yield shown(runs)
        except Exception as exc:  # shown, never a traceback
            message = str(exc) if isinstance(exc, PlaygroundError) else f"{type(exc).__name__}: {exc}"
            warn(message)
            yield [views.error_html(message), *shown(runs)[1:]]

    button.click(run, [phrase, strategy, *picks], outputs, show_progress="hidden")
    phrase.submit(run, [phrase, strategy, *picks], outputs, show_progress="hidden")


def one_line(text: str, limit: int) -> str:
    """`text` on one line (its runs of white space as single spaces), clipped to `limit` characters."""
    return clip(" ".join(text.split()), limit)


def run_choices(rows: list[dict]) -> list[tuple[str, int]]:
    return [(f"#{r['id']} · {r['status']} · {r['method']} · {one_line(r['prompt'], 40)}", r["id"]) for r in rows]


def pick_row(evt: gr.SelectData):
    return evt.row_value[0]  # the run id


def build_app(db: str) -> gr.Blocks:
    gr.set_static_paths([str(PLOTLY_JS)])
    name_range_errors()
    recorder = Recorder(db)
    cancels: dict[str, threading.Event] = {}  # session -> the Stop signal of its running generation
    params = method_params()
    first_method = "speculative" if "speculative" in METHODS else next(iter(METHODS))
    shipped = list(models.shipped_models())
    targets = sorted({*shipped, models.DEFAULT_MODEL} - {models.DEFAULT_DRAFT})
    drafts = sorted({*shipped, models.DEFAULT_DRAFT})

    def run(request: gr.Request, prompt, model, method, draft, max_new, temperature, top_k, top_p, seed,
            against_ar, *param_values):
        """Decode quietly (a line of progress, nothing drawn while timed), then the autoregressive reference if
        asked, then play the run back at its pace and show it with the comparison."""
        cancel = cancels.setdefault(request.session_hash, threading.Event())
        hidden = gr.update(visible=False)
        no_comparison = [hidden, None, hidden]  # the comparison panel, the run's theory settings, Explore
        kept = [gr.update()] * len(views.RunView._fields)  # the panel after its status: RunView's rest + DAG graph

        def quietly(events, what, shown_run=None):
            result, shown = (None, [], None), time.perf_counter()
            for result in views.run_so_far(events):
                started, steps, finished = result
                if finished is None and started and time.perf_counter() - shown >= PROGRESS_EVERY_S:
                    note = playback.decoding_note(steps, what)
                    yield [views.status_html(shown_run or started, None, note), *kept, *no_comparison]
                    shown = time.perf_counter()
            return result

        try:
            uses = method in METHODS and takes_draft(METHODS[method])
            req = Request(prompt=prompt or "", model=model or "", method=method or "",
                          draft=(draft or None) if uses else None,
                          max_new_tokens=whole(max_new, "max new tokens"), temperature=float(temperature or 0),
                          top_k=whole(top_k, "top-k"), top_p=float(top_p or 0), seed=whole(seed, "seed"),
                          params=chosen_params(method, dict(zip(params, param_values))))
            ar = dataclasses.replace(req, method="autoregressive", draft=None, params={})
            comparing = against_ar and compares_with_ar(req.method)
            yield [views.WARMING_UP, *kept, *no_comparison]
            warm_up_all((req, ar) if comparing else (req,))
            started, steps, finished = yield from quietly(recorder.record(generate(req, cancel)), "decoding")
            baseline, done = None, finished is not None and finished.status == "finished"
            if finished and finished.error:
                warn(f"run {finished.run_id} failed: {finished.error}")
            if done and comparing:
                baseline = (yield from quietly(recorder.record(generate(ar, cancel)),
                                               "done; now autoregressive decoding, to compare", started))[2]
            if done:
                yield from play_back(started, steps, cancel, no_comparison)
            final = run_panel(started, steps, finished)
            if baseline is None:
                yield [*final, *no_comparison]
            else:
                settings = theory.settings_of(steps, finished.stats, baseline.stats) \
                    if baseline.status == "finished" else None
                yield [*final, shown_if(views_theory.baseline_html(steps, finished, baseline, req.temperature <= 0)),
                       settings, gr.update(visible=settings is not None)]
        except Exception as exc:  # shown, never a traceback: PlaygroundError says what to fix, others what broke
            message = str(exc) if isinstance(exc, PlaygroundError) else f"{type(exc).__name__}: {exc}"
            warn(message)
            yield [views.error_html(message), *run_panel(None, [])[1:], *no_comparison]
        finally:
            cancels.pop(request.session_hash, None)

    def arm(request: gr.Request):
        """On Generate, before the run is queued: a Stop from now on reaches it, even while models load."""
        cancels[request.session_hash] = threading.Event()
        return gr.update(interactive=False), gr.update(interactive=True)

    def stop(request: gr.Request):
        if request.session_hash in cancels:
            cancels[request.session_hash].set()

    def method_changed(name, model_name, draft_name, prompt_text):
        chosen = METHODS[name]
        model_up, draft_up, prompt_up = suited_inputs(name, model_name, draft_name, prompt_text)
        return [model_up, prompt_up, {**draft_up, "visible": takes_draft(chosen)}, f"*{chosen.summary}*",
                gr.update(visible=compares_with_ar(name)), *sampling_updates(name, {}),
                *param_updates(name)]

    def history():
        rows = recorder.runs()
        table = [[r["id"], r["created_at"].replace("T", " ")[:19], r["status"], r["method"], r["model"],
                  r["draft"] or "", r["new_tokens"], round(r["tokens_per_s"] or 0, 1), one_line(r["prompt"], 60)]
                 for r in rows]
        return table, gr.update(choices=run_choices(rows))

    def load(run_id):
        if run_id in (None, ""):
            return None, gr.update(), *show(None, 0)
        try:
            replay = recorder.replay(int(run_id))
        except PlaygroundError as exc:
            warn(str(exc))
            return None, gr.update(), views.error_html(str(exc)), *run_panel(None, [])[1:], gr.update(visible=False)
        replay = (*replay, reference_of(replay[0]))
        n = len(replay[1])
        return replay, gr.update(maximum=max(n, 1), value=n), *show(replay, n)

    def reference_of(started):
        """The autoregressive run Generate made right after this one to compare with it, if it did."""
        if not compares_with_ar(started.method):
            return None
        try:
            ar_started, _, ar_finished = recorder.replay(started.run_id + 1)
        except PlaygroundError:
            return None
        return ar_finished if compare.is_reference_of(started, ar_started) else None

    def show(replay, k):
        if not replay:
            return [views.status_html(None, empty=PICK_A_RUN), *run_panel(None, [])[1:], gr.update(visible=False)]
        started, steps, finished, reference = replay
        k = max(0, min(int(k or 0), len(steps)))
        against = views_theory.baseline_html(steps, finished, reference, started.settings.get("temperature", 0) <= 0) \
            if k == len(steps) and reference is not None else None  # whole outputs compared: at the last step
        return [*run_panel(started, steps[:k], finished, total=len(steps)), shown_if(against)]

    def move(replay, k, delta):
        n = len(replay[1]) if replay else 0
        k = max(0, min(int(k or 0) + delta, n))
        return k, *show(replay, k)

    def play(replay, k):
        n = len(replay[1]) if replay else 0
        k = 0 if int(k or 0) >= n else int(k)  # at the end: play from the start
        return gr.Timer(active=n > 0), k, *show(replay, k)

    def tick(replay, k, speed):
        n = len(replay[1]) if replay else 0
        k = min(int(k or 0) + int(speed or 1), n)
        return gr.Timer(active=False) if k >= n else gr.skip(), k, *show(replay, k)  # never undo a Pause

    with gr.Blocks(title="Decoding Playground") as demo:
        gr.Markdown("# Decoding Playground\nWatch a language model decode, token by token: plain autoregressive "
                    "decoding next to speculative decoding, where a small draft model proposes tokens and the "
                    "target checks them in one forward pass. Every run is recorded and can be replayed.",
                    elem_id="title")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
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
                                            label="Target model", info="shipped name, Hub id or local folder",
                                            elem_id="model")
                        method = gr.Dropdown(list(METHODS), value=first_method, label="Method", elem_id="method")
                        method_info = gr.Markdown(f"*{METHODS[first_method].summary}*")
                        draft = gr.Dropdown(drafts, value=models.DEFAULT_DRAFT, allow_custom_value=True,
                                            label="Draft model", visible=takes_draft(METHODS[first_method]),
                                            elem_id="draft")
                        param_inputs = [param_input(p, first_method) for p in params.values()]
                        with gr.Accordion("Sampling", open=True):
                            max_new = gr.Slider(1, MAX_NEW_TOKENS, 128, step=1, label="max new tokens",
                                                elem_id="max-new")
                            temperature = gr.Slider(0, 2, 0, step=0.05, label="temperature",
                                                    info="0 = greedy", elem_id="temperature")
                            with gr.Row():
                                # precision None, not 0: Gradio would round a typed 1.5 to 2; whole() refuses it
                                top_k = gr.Number(0, label="top-k (0 = off)", elem_id="top-k")
                                top_p = gr.Number(1.0, label="top-p", minimum=0, maximum=1, elem_id="top-p")
                                seed = gr.Number(0, label="seed", elem_id="seed")
                    with gr.Column(scale=2):
                        live = view_panel("live", baseline=True)
                        explore_btn = gr.Button("Explore this run in the Theory tab", visible=False, size="sm",
                                                elem_id="explore-btn")
                        explored = gr.State(None)  # theory.settings_of the run, for the Theory tab
            with gr.Tab("History", id="history") as history_tab:
                with gr.Row():
                    run_pick = gr.Dropdown([], label="Run", scale=4, elem_id="run-pick")
                    refresh = gr.Button("Refresh", scale=1, elem_id="refresh-btn")
                runs_table = gr.Dataframe(headers=["id", "time (UTC)", "status", "method", "model", "draft",
                                                   "tokens", "tokens/s", "prompt"],
                                          interactive=False, max_height=260, elem_id="runs-table")
                with gr.Row():
                    first_btn = gr.Button("◀◀ First", size="sm", elem_id="first-btn")
                    back_btn = gr.Button("◀ Step back", size="sm", elem_id="back-btn")
                    play_btn = gr.Button("▶ Play", size="sm", variant="primary", elem_id="play-btn")
                    pause_btn = gr.Button("■ Pause", size="sm", elem_id="pause-btn")
                    forward_btn = gr.Button("Step ▶", size="sm", elem_id="step-btn")
                    last_btn = gr.Button("Last ▶▶", size="sm", elem_id="last-btn")
                with gr.Row(equal_height=True):
                    position = gr.Slider(0, 1, 0, step=1, label="steps shown", scale=4, elem_id="position")
                    speed = gr.Radio([1, 4, 16], value=1, label="steps per tick", scale=1, min_width=200,
                                     elem_id="speed")
                replay_view = view_panel("replay", PICK_A_RUN, baseline=True)
            with gr.Tab("Compare", id="compare"):
                compare_tab(recorder, targets, drafts)
            with gr.Tab("Diffusion", id="diffusion"):
                diffusion_tab(recorder, targets)
            with gr.Tab("DAG", id="dag"):
                dag_tab(recorder)
            with gr.Tab("Theory", id="theory"):
                theory_drawn, theory_sliders, theory_run, theory_outputs = theory_tab()
        replay_state = gr.State(None)
        timer = gr.Timer(REPLAY_TICK_S, active=False)

        controls = [prompt, model, method, draft, max_new, temperature, top_k, top_p, seed, against_ar, *param_inputs]
        buttons = [generate_btn, stop_btn]
        idle = (gr.update(interactive=True), gr.update(interactive=False))
        running = generate_btn.click(arm, None, buttons, queue=False).then(
            run, controls, [*live, explored, explore_btn], show_progress="hidden")
        running.then(lambda: idle, None, buttons, queue=False)
        running.failure(lambda: idle, None, buttons, queue=False)  # an input refused before the run started
        stop_btn.click(stop, None, None, queue=False)
        sampling = [temperature, top_k, top_p, seed]
        method.change(method_changed, [method, model, draft, prompt],
                      [model, prompt, draft, method_info, against_ar, *sampling, *param_inputs], queue=False)
        wanted = gr.State(128)  # the max new tokens a person asked for, restored once a model has room for it
        max_new.input(lambda value: value, max_new, wanted, queue=False)
        model.change(room_of, [model, wanted], max_new, queue=False)
        demo.load(room_of, [model, wanted], max_new, queue=False)
        choosers = [param_inputs[list(params).index(name)] for name in CHOOSERS]

        def chooser_changed(name, *values):
            values = dict(zip(CHOOSERS, values))
            return [*sampling_updates(name, values), *param_updates(name, values)]

        for chosen in choosers:
            chosen.input(chooser_changed, [method, *choosers], [*sampling, *param_inputs], queue=False)

        demo.load(history, None, [runs_table, run_pick])
        demo.load(theory_drawn, theory_sliders, theory_outputs, queue=False)
        def explore(settings, *values):
            """The Theory tab, drawn for the run's acceptance and costs (v held at the run's, dv 0), its sliders
            set to them, the run's own draft length and speedup marked on the speedup curve (chains)."""
            values = dict(zip(("alpha", "c", "v", "dv", "largest", "p2", "p3", "nodes", "depth"), values))
            for key, slider in zip(("alpha", "c", "v", "p2", "p3"), [theory_sliders[i] for i in (0, 1, 2, 5, 6)]):
                if settings.get(key) is not None:
                    values[key] = round(min(max(settings[key], slider.minimum), slider.maximum), 2)
            values["dv"] = 0
            run = None if settings.get("gamma") is None else (settings["gamma"], settings["measured"])
            return gr.Tabs(selected="theory"), *values.values(), run, *theory_drawn(*values.values(), run)

        explore_btn.click(explore, [explored, *theory_sliders], [tabs, *theory_sliders, theory_run, *theory_outputs],
                          queue=False)
        refresh.click(history, None, [runs_table, run_pick])
        history_tab.select(history, None, [runs_table, run_pick])
        runs_table.select(pick_row, None, run_pick)
        run_pick.change(load, run_pick, [replay_state, position, *replay_view], show_progress="hidden")
        position.input(show, [replay_state, position], replay_view, show_progress="hidden")
        here = [position, *replay_view]
        for btn, delta in ((first_btn, -10**9), (back_btn, -1), (forward_btn, 1), (last_btn, 10**9)):
            btn.click(lambda r, k, d=delta: move(r, k, d), [replay_state, position], here, show_progress="hidden")
        play_btn.click(play, [replay_state, position], [timer, *here], show_progress="hidden")
        pause_btn.click(lambda: gr.Timer(active=False), None, timer, queue=False)
        timer.tick(tick, [replay_state, position, speed], [timer, *here], show_progress="hidden")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Decoding Playground web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--db", help="SQLite file for runs (else $PLAYGROUND_DB, else playground.db)")
    parser.add_argument("--device", help="where the models run: cpu (default), cuda, cuda:N or mps "
                                         "(else $PLAYGROUND_DEVICE)")
    args = parser.parse_args(argv)
    try:
        if args.device:
            models.use_device(args.device)
        demo = build_app(db_path(args.db))
    except PlaygroundError as exc:
        raise SystemExit(f"error: {exc}")
    demo.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, theme=THEME,
        css="\n".join([views.CSS, views_drafts.CSS, views_tree.CSS, views_diffusion.CSS, views_dag.CSS, compare.CSS,
                       views_theory.CSS, APP_CSS]),
        footer_links=[])


if __name__ == "__main__":
    main()
