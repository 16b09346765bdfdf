"""The Theory tab: Leviathan et al.'s formulas as curves over the draft length, and Sequoia's best tree, for the
acceptance and costs set with its sliders (no model runs); a run of the Generate tab can be explored in it."""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from playground.app.common import PLOT_MIN_WIDTH
from playground.app.inputs import whole
from playground.views import theory as views_theory

CPU_VERIFY = (1.22, 0.03)  # Theory tab: v₁ and dv as tiny-code measures them on a 2-core CPU (docs/BENCHMARKS.md)
# ... and on the lean runtime there (BENCHMARKS "Verification cost on both runtimes"): one token costs 3.29 ms against
# transformers' 5.17, so verifying is relatively dearer: 2 tokens 1.13 forwards, then +0.04 a token (N = 16: 1.73)
LEAN_VERIFY = (1.13, 0.04)
# ... and on a GPU (an H200, batch size 1; BENCHMARKS "On a GPU"): verifying 4 to 33 tokens cost 1.06-1.25
# autoregressive forwards with no trend in the number of tokens, and the forward itself 6.6 ms for 2 tokens, 7.6 for 65
GPU_VERIFY = (1.15, 0.0)
SLIDERS = ("alpha", "c", "v", "dv", "largest", "p2", "p3", "nodes", "depth")  # what each slider sets, in drawn's order
ABOUT = ("### What theory predicts for a draft chain\nIf each drafted token is accepted with probability α, "
         "independently, a step drafting γ tokens commits (1 − α^(γ+1)) / (1 − α) tokens for one target "
         "forward, and costs γ draft forwards (each c of an autoregressive forward) plus one verification "
         "(v; γ = 0 is autoregressive decoding, v = 1). Their ratio is the ideal speedup (Leviathan et al. "
         "2023). The sliders start at what `tiny-code-draft` and `tiny-code` measure on a 2-core CPU "
         "(docs/BENCHMARKS.md): verifying γ + 1 tokens costs more than one token there, and more with every "
         "token; on a GPU (measured on an H200) it costs about 1.15 forwards however many tokens are verified. "
         "The lean runtime makes one token cheaper on this CPU (3.3 ms against 5.2), so verifying several costs "
         "relatively more there (16 drafted tokens: 1.73 forwards against 1.46): every method's ideal speedup "
         "drops with it. "
         "The Generate tab shows α, c and v of each run next to this.")
ABOUT_TREES = ("#### The best tree (Sequoia)\nA tree tries a node's children in turn, likeliest first: the k-th is "
               "accepted with probability p_k when the ones before it were not (positional acceptance; p_1 is α "
               "above). Sequoia's dynamic program finds the tree with the most expected tokens within a node "
               "budget and a depth; each level costs one draft forward (c), and verifying n nodes costs v as for "
               "a chain of n. The Generate tab measures p_k of tree runs (acceptance by sibling rank).")


class TheoryTab(NamedTuple):
    sliders: dict  # by SLIDERS name, in its order
    run: gr.State  # a run explored here (theory_events' explore): (mean draft length, measured speedup)
    outputs: list  # what drawn draws: the summary, two curves, the best tree's summary and drawing


def theory_tab() -> TheoryTab:
    """The Theory tab's sliders, curves and best tree, redrawn as a slider moves."""
    gr.Markdown(ABOUT)
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
        cpu_btn = gr.Button(f"Verification as on this CPU, transformers (v₁ {CPU_VERIFY[0]}, dv {CPU_VERIFY[1]})",
                            size="sm", elem_id="th-cpu")
        lean_btn = gr.Button(f"... lean runtime (v₁ {LEAN_VERIFY[0]}, dv {LEAN_VERIFY[1]}: a cheaper token, a "
                             "steeper verification)", size="sm", elem_id="th-lean")
        gpu_btn = gr.Button(f"Verification as measured on a GPU (H200, batch size 1: v₁ {GPU_VERIFY[0]}, "
                            f"dv {GPU_VERIFY[1]:g})", size="sm", elem_id="th-gpu")
    summary = gr.HTML(elem_id="th-summary")
    with gr.Row(equal_height=True):
        tokens = gr.Plot(show_label=False, min_width=PLOT_MIN_WIDTH, elem_id="th-tokens")
        speed = gr.Plot(show_label=False, min_width=PLOT_MIN_WIDTH, elem_id="th-speedup")
    gr.Markdown(ABOUT_TREES)
    with gr.Row():
        p2 = gr.Slider(0, 0.99, 0.39, step=0.01, label="p₂: second child, when the first is turned down",
                       elem_id="th-p2")
        p3 = gr.Slider(0, 0.99, 0.15, step=0.01, label="p₃: third child", elem_id="th-p3")
        nodes = gr.Slider(1, 64, 12, step=1, label="node budget", elem_id="th-nodes")
        depth = gr.Slider(1, 12, 4, step=1, label="depth", elem_id="th-depth")
    tree_summary = gr.HTML(elem_id="th-tree-summary")
    tree = gr.Plot(show_label=False, elem_id="th-tree")
    tab = TheoryTab(dict(zip(SLIDERS, (alpha, c, v1, dv, max_gamma, p2, p3, nodes, depth))), gr.State(None),
                    [summary, tokens, speed, tree_summary, tree])
    sliders = list(tab.sliders.values())
    for slider in sliders:  # .input, not .change: a run explored here sets several sliders at once (explore)
        slider.input(drawn, [*sliders, tab.run], tab.outputs, queue=False, show_progress="hidden")
    for btn, (v_one, slope) in ((cpu_btn, CPU_VERIFY), (lean_btn, LEAN_VERIFY), (gpu_btn, GPU_VERIFY)):
        btn.click(lambda *values, v=v_one, d=slope: verifying(v, d, *values), [*sliders, tab.run],
                  [*sliders, *tab.outputs], queue=False, show_progress="hidden")
    return tab


def drawn(a, cost, v, slope, largest, second, third, budget, levels, run=None):
    """The curves and the best tree for the sliders' values (in SLIDERS order) and the `run` explored."""
    a, cost, v, slope = float(a), float(cost), float(v), float(slope)
    curves = views_theory.explorer(a, cost, v, slope, whole(largest, "largest γ"), run)
    best = views_theory.best_tree_view([a, float(second), float(third)], whole(budget, "node budget"),
                                       whole(levels, "depth"), cost, v, slope)
    return *curves, *best


def verifying(v_one, slope, *values):
    """v₁ and dv set, every other slider kept; the curves and the best tree drawn for them."""
    values = [*values[:2], v_one, slope, *values[4:]]
    return *values[:len(SLIDERS)], *drawn(*values)


def theory_events(demo: gr.Blocks, tab: TheoryTab, tabs: gr.Tabs, explore_btn: gr.Button,
                  explored: gr.State) -> None:
    """The Theory tab drawn on load; Generate's Explore button (`explore_btn`, the run's theory.settings_of in
    `explored`) switches `tabs` to it, drawn for the run."""
    sliders = list(tab.sliders.values())
    demo.load(drawn, sliders, tab.outputs, queue=False)

    def explore(settings, *values):
        """The Theory tab, drawn for the run's acceptance and costs (v held at the run's, dv 0), its sliders
        set to them, the run's own draft length and speedup marked on the speedup curve (chains)."""
        values = dict(zip(SLIDERS, values))
        for key in ("alpha", "c", "v", "p2", "p3"):
            if settings.get(key) is not None:
                slider = tab.sliders[key]
                values[key] = round(min(max(settings[key], slider.minimum), slider.maximum), 2)
        values["dv"] = 0
        run = None if settings.get("gamma") is None else (settings["gamma"], settings["measured"])
        return gr.Tabs(selected="theory"), *values.values(), run, *drawn(*values.values(), run)

    explore_btn.click(explore, [explored, *sliders], [tabs, *sliders, tab.run, *tab.outputs], queue=False)
