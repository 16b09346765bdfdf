"""The DAG tab: one French number phrase translated by the DA-Transformer, the autoregressive baseline, gad (the
baseline verifying the DAG's draft) and the plain NAT, side by side, with the DAG's graph."""

from __future__ import annotations

import gradio as gr

from playground.app.api import named_inputs
from playground.app.common import (
    NUMBER_EXAMPLES,
    dag_view,
    failed,
    progress_only,
    shown_if,
    warm_up_all,
    warn_unstored,
)
from playground.app.gpu import gpu
from playground.app.visitors import Visitors
from playground.compare import dag as compare_dag
from playground.compare import drafting as compare
from playground.engine import generate
from playground.errors import PlaygroundError
from playground.methods import dag
from playground.runtime.dag_graph import STRATEGIES
from playground.views import dag as views_dag
from playground.views import run as views

ABOUT = ("### DAG vs autoregressive on the same phrase\nThe toy task: French number phrases to English. A "
         "DA-Transformer builds a graph of tokens in one parallel pass and a strategy picks a path through it; "
         "the autoregressive baseline writes one token per forward; gad lets the baseline verify the DAG's "
         "output as a draft (same output as the baseline, fewer forwards); the NAT is the same network "
         "without the graph. All four are recorded (see History); times leave out model loading and a first, "
         "unrecorded warm-up pass of each model.")


def dag_tab(visitors: Visitors) -> None:
    """The DAG tab: one French number phrase translated by the DA-Transformer, the autoregressive baseline, gad (the
    baseline verifying the DAG's draft) and the plain NAT, side by side, with the DAG's graph."""
    gr.Markdown(ABOUT)
    names = compare_dag.TAB_MODELS
    with gr.Row():
        with gr.Column(scale=3):
            phrase = gr.Textbox(label="French number phrase", value=NUMBER_EXAMPLES[0], elem_id="dag-phrase",
                                info="words from zéro to neuf cent quatre-vingt-dix-neuf mille neuf cent "
                                     "quatre-vingt-dix-neuf")
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

    @gpu
    def run(visitor: gr.Request, phrase, strategy, *picked):
        recorder = visitors.recorder(visitor)  # hosted mode: the runs are the visitor's
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
            warn_unstored(*(r[2] for r in runs.values()))
            yield shown(runs)
        except Exception as exc:  # shown, never a traceback; a side that failed skipped the warning above
            warn_unstored(*(r[2] for r in runs.values() if r))
            yield [views.error_html(failed(exc)), *shown(runs)[1:]]

    button.click(named_inputs(run, [f"model_{k}" for k in names]), [phrase, strategy, *picks], outputs,
                 show_progress="hidden", api_name="dag")
    phrase.submit(run, [phrase, strategy, *picks], outputs, show_progress="hidden")


def shown(runs: dict, running: str = "") -> list:
    """The tab's outputs: the verdict, each side, and the DAG's graph."""
    ar = runs["ar"][2] if runs["ar"] else None
    started, steps, _ = runs["dag"] or (None, [], None)
    return [compare_dag.verdict_html(runs, running), *(compare_dag.side_html(s.key, runs[s.key], ar)
                                                     for s in compare_dag.SIDES),
            shown_if(views_dag.dag_html(started, steps))]
