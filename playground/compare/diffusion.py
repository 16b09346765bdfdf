"""The Diffusion tab: one prompt decoded by a diffusion model the slow way (fixed_steps, one token per forward) and a
fast way (threshold by default), side by side, and a speed-quality curve across thresholds (no Gradio here).

Parallel decoding is lossy: the fast output may differ from the slow one. Each output is judged by its agreement
with the slow output (share of equal positions) and its generative perplexity under the autoregressive tiny-code
(`playground.analysis.quality`); the curve puts both against the forward passes spent.
"""

from __future__ import annotations

import html
from typing import NamedTuple

import plotly.graph_objects as go

from playground import hosted
from playground.analysis import quality
from playground.engine import Request
from playground.errors import PlaygroundError
from playground.events import RunFinished, RunStarted
from playground.methods.diffusion import cache_of
from playground.runtime.canvas import CACHES
from playground.views.common import cards_html, new_figure, style_figure

FAST_STRATEGIES = ("threshold", "learn2pd", "sched", "freedave", "fixed_steps")
STRATEGY_HELP = {  # one line each, shown under the strategy
    "threshold": "Fast-dLLM: each forward commits every masked token of the block at least `threshold` confident "
                 "(and always the most confident one).",
    "learn2pd": "Learn2PD: a tiny network trained on this model's own slow runs commits every masked token it finds "
                "final with probability at least the slider's value (0.98 is its usual level).",
    "sched": "SchED: one token per forward until the block's mean top-1 minus top-2 margin passes a falling "
             "threshold, then the whole block at once.",
    "freedave": "FreeDave: one forward drafts several one-token steps, one batched forward checks them: the same "
                "output as one token per forward, in fewer forwards.",
    "fixed_steps": "LLaDA: a fixed number of forwards per block, the most confident tokens first (here: steps 0, "
                   "one token per forward, the slow side itself).",
}
CACHE_CHOICES = CACHES  # the caches a side may take (the tab lists them)
# The tab opens where parallel decoding pays: code that follows a pattern the prompt sets, many tokens sure at once
# (tiny-code-diffusion, 32 tokens, block 32: 14 forwards instead of 32, the same output; docs/BENCHMARKS.md). The
# "dependent" button loads the opposite case.
DEFAULT_PROMPT = ("parser = argparse.ArgumentParser()\nparser.add_argument('--name', type=str)\n"
                  "parser.add_argument('--size', type=int)\n")
DEFAULT_THRESHOLD = 0.8
THRESHOLDS = (0.5, 0.7, 0.9, 0.95, 0.99)
SLOW = {"strategy": "fixed_steps", "steps": 0}
CACHE = "prefix"  # both sides' KV cache unless the user changes one: the difference is then parallel decoding alone
SAME = "same as slow"


class Judged(NamedTuple):
    forwards: int
    wall_s: float
    tokens: int
    agreement: float
    perplexity: float | None
    cache: str = "none"  # the KV cache the run decoded with: none, prefix or dual


def requests(prompt: str, model: str, max_new_tokens: int, strategy: str, threshold: float,
             block: int = 32, cache: str = CACHE, fast_cache: str = SAME) -> list[Request]:
    """The slow run (one token per forward), then the fast one; both with `cache` unless `fast_cache` names the
    fast side's own (a cache changes the output a little, so comparing across caches blames parallel decoding for
    what the cache did)."""
    common = dict(prompt=prompt, model=model, method="diffusion", max_new_tokens=max_new_tokens)
    level = {"threshold": {"threshold": threshold}, "learn2pd": {"filter": threshold}}.get(strategy, {})
    fast = {"strategy": strategy, "block": block, **level,
            "cache": cache if fast_cache in (SAME, "", None) else fast_cache}
    slow = {**SLOW, "block": block, "cache": cache}
    return [Request(params=slow, **common), Request(params=fast, **common)]


def curve_request(prompt: str, model: str, max_new_tokens: int, threshold: float, block: int = 32,
                  cache: str = CACHE) -> Request:
    return Request(prompt=prompt, model=model, method="diffusion", max_new_tokens=max_new_tokens,
                   params={"strategy": "threshold", "threshold": threshold, "block": block, "cache": cache})


def judge(started: RunStarted, finished: RunFinished, reference: list[int]) -> Judged:
    """A finished run's forwards and time, and the quality of its output against the slow `reference`."""
    s, settings = finished.stats, started.settings
    return Judged(s.target_forwards, s.wall_s, len(finished.token_ids),
                  quality.agreement(finished.token_ids, reference),
                  quality.generative_perplexity(started.prompt_ids, finished.token_ids),
                  cache_of(settings["strategy"], settings.get("cache", "auto")))


def parse_thresholds(text: str) -> list[float]:
    """'0.5, 0.9' -> [0.5, 0.9]; each in (0, 1]; in hosted mode at most its limit of them (one run each)."""
    try:
        values = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise PlaygroundError(f"thresholds must be numbers separated by commas, got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise PlaygroundError(f"thresholds must be in (0, 1], got {text!r}")
    hosted.check("curve thresholds", len(set(values)))
    return sorted(set(values))


def times(ratio: float, better: str, worse: str) -> str:
    """'2.00× faster' for 2.0, '2.00× slower' for 0.5: a ratio below one said the way a person would."""
    return f"{ratio:.2f}× {better}" if ratio >= 1 else f"{1 / ratio:.2f}× {worse}"


def stats_html(judged: Judged | None, slow: Judged | None = None) -> str:
    """One side's numbers; with `slow`, how many times fewer forwards and how much faster than it."""
    if judged is None:
        return '<div class="pg-empty">not run yet</div>'
    ratio = f" · {times(slow.forwards / judged.forwards, 'fewer', 'more')}" if slow and judged.forwards else ""
    speed = f" · {times(slow.wall_s / judged.wall_s, 'faster', 'slower')}" if slow and judged.wall_s else ""
    ppl = "—" if judged.perplexity is None else f"{judged.perplexity:.1f}"
    return cards_html([("target_forwards", f"{judged.forwards}", f"forward passes{ratio}"),
                       ("wall_s", f"{judged.wall_s:.2f} s", f"wall time{speed}"),
                       ("agreement", f"{judged.agreement:.0%}", "agreement with the slow output"),
                       ("perplexity", ppl, f"generative perplexity (tiny-code) · {judged.tokens} tokens"),
                       ("cache", judged.cache, "KV cache (a cache changes the output a little: both "
                                               "sides share one unless you change one)")], "pg-cmp")


def verdict_html(slow: Judged | None, fast: Judged | None, running: str = "") -> str:
    if running:
        return f'<div class="pg-verdict" data-verdict="running">Running {html.escape(running)}…</div>'
    if slow is None or fast is None:
        return '<div class="pg-verdict" data-verdict="none">Press Run to decode the prompt the slow and the fast ' \
               'way.</div>'
    same = fast.agreement == 1.0
    fewer = slow.forwards / max(1, fast.forwards)
    faster = slow.wall_s / fast.wall_s if fast.wall_s > 0 else float("nan")
    return (f'<div class="pg-verdict {"pg-same" if same else ""}" data-verdict="{"identical" if same else "differ"}" '
            f'data-fewer="{fewer:.2f}" data-agreement="{fast.agreement:.4f}">'
            f'{slow.forwards} forwards slow vs {fast.forwards} fast: <b>{fewer:.2f}x fewer</b>, {faster:.2f}x the '
            f'speed in wall time · the fast output agrees with the slow one at {fast.agreement:.0%} of positions'
            f'{" (identical)" if same else " (parallel decoding is lossy)"}</div>')


def curve_points(points: list[tuple[float, Judged]]) -> list[tuple[str, Judged]]:
    """The curve's points in order of forwards, thresholds that landed on the same point (forwards and agreement)
    merged into one label ("0.9 · 0.95"): drawn apart, their labels sat on each other."""
    merged: dict[tuple[int, float], list] = {}
    for t, j in sorted(points, key=lambda p: (p[1].forwards, p[0])):
        merged.setdefault((j.forwards, round(j.agreement, 4)), [[], j])[0].append(t)
    return [(" · ".join(f"{t:g}" for t in ts), j) for ts, j in merged.values()]


def curve_figure(points: list[tuple[float, Judged]], slow: Judged | None) -> go.Figure:
    """Forward passes against agreement with the slow output (left axis) and generative perplexity (right), one
    point per threshold (thresholds on the same point share it), and the slow setting's own point."""
    fig = new_figure()
    shown = curve_points(points)
    if slow is not None:  # first, so drawn under the curve, and open: a threshold's point on it stays visible
        fig.add_scatter(x=[slow.forwards], y=[1.0], name="slow: one token per forward", mode="markers",
                        marker=dict(symbol="star-open", size=16, color="#111827", line=dict(width=2)),
                        hovertemplate="slow: %{x} forwards<extra></extra>")
    x = [j.forwards for _, j in shown]
    labels = [label for label, _ in shown]
    # neighbouring labels alternate above and below their points, so two close points do not write on each other
    where = ["top center" if i % 2 == 0 else "bottom center" for i in range(len(shown))]
    fig.add_scatter(x=x, y=[j.agreement for _, j in shown], name="agreement with the slow output",
                    mode="lines+markers+text", text=labels, textposition=where, cliponaxis=False,
                    line=dict(color="#15803d"),
                    hovertemplate="threshold %{text}: %{x} forwards, agreement %{y:.0%}<extra></extra>")
    fig.add_scatter(x=x, y=[j.perplexity for _, j in shown], name="generative perplexity (right axis)",
                    mode="lines+markers", yaxis="y2", line=dict(color="#c2410c", dash="dot"), customdata=labels,
                    hovertemplate="threshold %{customdata}: perplexity %{y:.1f}<extra></extra>")
    style_figure(fig, "Speed vs quality across thresholds", "forward passes", "agreement", not points)
    fig.update_layout(hovermode="closest", yaxis2=dict(overlaying="y", side="right", title="perplexity",
                                                       rangemode="tozero", showgrid=False),
                      margin=dict(r=70))
    fig.update_layout(yaxis_range=[0, 1.1], yaxis_tickformat=".0%")
    return fig
