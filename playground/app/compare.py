"""The Compare tab: one prompt, decoded greedily as a chain, a static tree and a dynamic tree, side by side."""

from __future__ import annotations

import gradio as gr

from playground import hosted
from playground.app.common import EXAMPLES, failed, progress_only, tree_view, warm_up_all, warn_unstored
from playground.app.gpu import gpu
from playground.app.inputs import whole
from playground.app.visitors import Visitors
from playground.compare import drafting as compare
from playground.engine import generate
from playground.models import loading as models
from playground.views import chain
from playground.views import run as views
from playground.views import tree as views_tree

ABOUT = ("### Static vs dynamic vs chain on the same prompt, side by side\nGreedy decoding, one method after "
         "the other, each recorded (see History), after autoregressive decoding of the prompt as the "
         "reference. All must write exactly the same text; what differs is how many target forwards they "
         "need, and the time that costs.")


def compare_tab(visitors: Visitors, targets: list[str], drafts: list[str]) -> None:
    """The Compare tab: one prompt, decoded greedily as a chain, a static tree and a dynamic tree, side by side."""
    gr.Markdown(ABOUT)
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=5, value=EXAMPLES[0], scale=3, elem_id="cmp-prompt")
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(targets, value=models.DEFAULT_MODEL, allow_custom_value=True, label="Target model",
                                elem_id="cmp-model")
            draft = gr.Dropdown(drafts, value=models.DEFAULT_DRAFT, allow_custom_value=True, label="Draft model",
                                elem_id="cmp-draft")
            max_new = gr.Slider(1, hosted.limit("max_new_tokens", 512), 64, step=1, label="max new tokens",
                                elem_id="cmp-max-new")
            button = gr.Button("Run all three", variant="primary", elem_id="compare-btn")
    outputs = [gr.HTML(compare.verdict_html([]), elem_id="cmp-verdict")]
    with gr.Row(equal_height=False):
        for c in compare.CONTENDERS:
            with gr.Column(min_width=320, elem_id=f"cmp-{c.key}"):
                gr.Markdown(f"#### {c.title}")
                outputs += [gr.HTML(compare.stats_html(None), elem_id=f"cmp-{c.key}-stats"),
                            gr.HTML(chain.chips_html([]), elem_id=f"cmp-{c.key}-chips")]
                if c.key == "chain":
                    gr.HTML(compare.chain_note())
                else:
                    outputs.append(tree_view(f"cmp-{c.key}-tree"))

    @gpu
    def run(visitor: gr.Request, prompt, model, draft, max_new):
        recorder = visitors.recorder(visitor)  # hosted mode: the runs are the visitor's
        runs = (compare.REFERENCE, *compare.CONTENDERS)
        results: list = [None] * len(runs)
        try:
            requests = compare.requests(prompt or "", model or "", draft or None, whole(max_new, "max new tokens"))
            yield shown(results, "a short warm-up of each method")
            warm_up_all(requests)
            for i, (c, request) in enumerate(zip(runs, requests)):
                yield progress_only(compare.verdict_html([r[2] if r else None for r in results], c.title), outputs)
                results[i] = compare.collect(recorder.record(generate(request)))
            warn_unstored(*(r[2] for r in results))
            yield shown(results)
        except Exception as exc:  # shown, never a traceback
            yield [views.error_html(failed(exc)), *shown(results)[1:]]

    button.click(run, [prompt, model, draft, max_new], outputs, show_progress="hidden", api_name="compare")


def shown(results: list, running: str = "") -> list:
    """The Compare tab's outputs. `results`: the reference's run, then each contender's (None: not run yet)."""
    stats = [r[2].stats if r and r[2] else None for r in results]
    out = [compare.verdict_html([r[2] if r else None for r in results], running)]
    for c, result in zip(compare.CONTENDERS, results[1:]):
        started, steps, finished = result or (None, [], None)
        out += [compare.stats_html(finished.stats if finished else None,
                                   None if c.key == "chain" else stats[1], stats[0]),
                chain.chips_html(steps)]
        if c.key != "chain":
            tree = views_tree.tree_html(started, steps, overview=True)
            out.append(gr.update(value=tree, visible=tree is not None))
    return out
