"""The Diffusion tab: one prompt decoded by a diffusion model the slow way and a fast way, side by side, and a
speed-quality curve across thresholds."""

from __future__ import annotations

import json

import gradio as gr

from playground import hosted
from playground.app.common import failed, progress_only, tree_view, warm_up_all, warn_unstored
from playground.app.gpu import gpu
from playground.app.inputs import whole
from playground.app.visitors import Visitors
from playground.compare import diffusion as cd
from playground.compare import drafting as compare
from playground.data.suites import suite_path
from playground.engine import generate
from playground.errors import PlaygroundError
from playground.views import diffusion as views_diffusion
from playground.views import run as views

DIFFUSION_MODEL = "tiny-code-diffusion"  # the Diffusion tab's default
ABOUT = ("### Slow vs fast diffusion decoding on the same prompt\nThe slow setting commits one token per "
         "forward (`fixed_steps`, steps 0); the fast one commits several per forward. Both use the same KV cache "
         "unless you change one, so what differs is parallel decoding alone. Both are recorded "
         "(see History). Parallel decoding is lossy: agreement with the slow output and generative perplexity "
         "under the autoregressive tiny-code say what the speed cost. The curve decodes the prompt once per "
         "threshold (not recorded).")
DEPENDENT = json.loads(suite_path("dependent").read_text().splitlines()[0])["prompt"]  # parallel decoding breaks


def strategy_help(strategy: str) -> str:
    return f"*{cd.STRATEGY_HELP.get(strategy, '')}*"


def diffusion_tab(visitors: Visitors, targets: list[str]) -> None:
    """The Diffusion tab: one prompt decoded by a diffusion model the slow way and a fast way, side by side, and a
    speed-quality curve across thresholds."""
    gr.Markdown(ABOUT)
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=5, value=cd.DEFAULT_PROMPT, scale=3, elem_id="dlm-prompt")
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(targets, value=DIFFUSION_MODEL, allow_custom_value=True, label="Diffusion model",
                                elem_id="dlm-model")
            with gr.Row():
                strategy = gr.Dropdown(list(cd.FAST_STRATEGIES), value="threshold", label="fast strategy",
                                       elem_id="dlm-strategy")
                threshold = gr.Slider(0.05, 1, cd.DEFAULT_THRESHOLD, step=0.01, label="threshold",
                                      elem_id="dlm-threshold")
            about_strategy = gr.Markdown(strategy_help("threshold"), elem_id="dlm-strategy-help")
            with gr.Row():
                cache = gr.Dropdown(list(cd.CACHE_CHOICES), value=cd.CACHE, label="KV cache (both sides)",
                                    elem_id="dlm-cache")
                fast_cache = gr.Dropdown([cd.SAME, *cd.CACHE_CHOICES], value=cd.SAME, label="fast side's cache",
                                         elem_id="dlm-fast-cache")
            with gr.Row():
                max_new = gr.Slider(1, hosted.limit("max_new_tokens", 256), 32, step=1, label="max new tokens",
                                    elem_id="dlm-max-new")
                block = gr.Slider(1, hosted.limit("block", 256), 32, step=1, label="block", elem_id="dlm-block")
            curve = cd.THRESHOLDS[::2] if hosted.active() else cd.THRESHOLDS  # hosted: 0.5, 0.9, 0.99, its limit
            thresholds = gr.Textbox(", ".join(f"{t:g}" for t in curve), label="curve thresholds",
                                    info="empty: no curve", elem_id="dlm-thresholds")
            with gr.Row():
                button = gr.Button("Run slow, fast and the curve", variant="primary", elem_id="dlm-btn")
                dependent = gr.Button("Load a prompt where parallel decoding breaks", elem_id="dlm-dependent")
    outputs = [gr.HTML(cd.verdict_html(None, None), elem_id="dlm-verdict")]
    with gr.Row(equal_height=False):
        for key, title in (("slow", "Slow · fixed_steps, one token per forward"), ("fast", "Fast")):
            with gr.Column(min_width=320, elem_id=f"dlm-{key}"):
                gr.Markdown(f"#### {title}")
                outputs += [gr.HTML(cd.stats_html(None), elem_id=f"dlm-{key}-stats"),
                            gr.HTML(views_diffusion.text_html(None, []), elem_id=f"dlm-{key}-text"),
                            tree_view(f"dlm-{key}-canvas")]
    outputs.append(gr.Plot(cd.curve_figure([], None), show_label=False, elem_id="dlm-curve"))

    @gpu
    def run(visitor: gr.Request, prompt, model, strategy, threshold, max_new, block, thresholds, cache=cd.CACHE,
            fast_cache=cd.SAME):
        recorder = visitors.recorder(visitor)  # hosted mode: the runs are the visitor's
        runs, judged, points = [None, None], [None, None], []
        try:
            n, size = whole(max_new, "max new tokens"), whole(block, "block")
            wanted = cd.parse_thresholds(thresholds) if (thresholds or "").strip() else []
            requests = cd.requests(prompt or "", model or "", n, strategy, float(threshold), size, cache, fast_cache)
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
            warn_unstored(*(r[2] for r in runs))  # before the curve, which is not recorded
            for t in wanted:
                yield progress_only(cd.verdict_html(*judged, f"the curve: threshold {t:g}"), outputs)
                if strategy == "threshold" and t == float(threshold):
                    points.append((t, judged[1]))  # already decoded
                    continue
                curve_cache = requests[1].params["cache"]
                started, _, finished = compare.collect(generate(cd.curve_request(prompt, model, n, t, size,
                                                                                 curve_cache)))
                points.append((t, cd.judge(started, finished, runs[0][2].token_ids)))
            yield shown(runs, judged, points)
        except Exception as exc:  # shown, never a traceback
            if judged[1] is None:  # a setting failed before the warning about storing was given
                warn_unstored(*(r[2] for r in runs if r))
            yield [views.error_html(failed(exc)), *shown(runs, judged, points)[1:]]

    button.click(run, [prompt, model, strategy, threshold, max_new, block, thresholds, cache, fast_cache], outputs,
                 show_progress="hidden", api_name="diffusion")
    strategy.change(strategy_help, strategy, about_strategy, show_progress="hidden", api_name=False)
    dependent.click(lambda: DEPENDENT, None, prompt, show_progress="hidden", api_name=False)


def shown(runs: list, judged: list, points: list, running: str = "") -> list:
    """The tab's outputs: the verdict, each setting's stats, text and canvas, and the curve."""
    out = [cd.verdict_html(*judged, running)]
    for run, mine in zip(runs, judged):
        started, steps, finished = run or (None, [], None)
        canvas = views_diffusion.canvas_html(started, steps, finished is not None)
        out += [cd.stats_html(mine, judged[0] if mine is not judged[0] else None),
                views_diffusion.text_html(started, steps, finished is not None),
                gr.update(value=canvas, visible=canvas is not None)]
    return [*out, cd.curve_figure(points, judged[0])]
