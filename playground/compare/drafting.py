"""Compare: one prompt decoded greedily by a draft chain, a static tree and a dynamic tree, one after another, and
what that shows side by side (no Gradio here). Greedy decoding is lossless, so the three outputs must be identical,
and identical to autoregressive decoding of the prompt, which runs first as the reference; what differs is how many
target forwards each needs and how much time they cost.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import NamedTuple

from playground.engine import Request
from playground.errors import PlaygroundError
from playground.events import RunFinished, RunStarted, Stats, Step
from playground.methods import METHODS
from playground.views.common import cards_html, first_difference
from playground.views.run import run_so_far


class Contender(NamedTuple):
    key: str      # used in element ids
    title: str
    method: str
    params: dict


CONTENDERS = (Contender("chain", "Chain · speculative, gamma 4", "speculative", {"gamma": 4}),
              Contender("static", "Static tree · tree_speculative", "tree_speculative", {"tree": "static"}),
              Contender("dynamic", "Dynamic tree · tree_speculative", "tree_speculative", {"tree": "dynamic"}))
REFERENCE = Contender("autoregressive", "Autoregressive", "autoregressive", {})


def requests(prompt: str, model: str, draft: str | None, max_new_tokens: int) -> list[Request]:
    """The reference run, then the three, in CONTENDERS order, greedy, each method's other parameters at their
    defaults."""
    return [Request(prompt=prompt, model=model, method=c.method, draft=None if c is REFERENCE else draft,
                    max_new_tokens=max_new_tokens, params=dict(c.params)) for c in (REFERENCE, *CONTENDERS)]


SAME_SETTINGS = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "stop_at_eos")


def is_reference_of(run: RunStarted, ar: RunStarted) -> bool:
    """Whether `ar` is autoregressive decoding of `run`'s prompt with its model and sampling settings: the run the
    Generate tab makes right after a lossless one, to compare."""
    return (ar.method == "autoregressive" and (ar.model, ar.prompt) == (run.model, run.prompt)
            and all(ar.settings.get(k) == run.settings.get(k) for k in SAME_SETTINGS))


def compares_with_ar(method: str) -> bool:
    """A lossless method runs on models autoregressive decoding runs on, so its output can be compared with it."""
    return method != "autoregressive" and method in METHODS and METHODS[method].lossless


def reference_run(recorder, started: RunStarted) -> RunFinished | None:
    """The autoregressive run the Generate tab stored right after `started` in `recorder` (a storage.Recorder) to
    compare with it, if it did: what History and an exported page show at a run's last step."""
    if not compares_with_ar(started.method):
        return None
    try:
        ar_started, _, ar_finished = recorder.replay(started.run_id + 1)
    except PlaygroundError:
        return None
    return ar_finished if is_reference_of(started, ar_started) else None


def collect(events: Iterable) -> tuple[RunStarted | None, list[Step], RunFinished | None]:
    """A whole run: its RunStarted, steps and RunFinished."""
    run = (None, [], None)
    for run in run_so_far(events):  # noqa: B007 (the last one is the whole run)
        pass
    return run


def _times(stats: Stats, other: Stats | None, name: str) -> str:
    return f" · {stats.tokens_per_s / other.tokens_per_s:.2f}× {name}" if other and other.tokens_per_s else ""


def stats_html(stats: Stats | None, chain: Stats | None = None, reference: Stats | None = None) -> str:
    """A contender's numbers; its tokens/s relative to autoregressive decoding (`reference`) and to the chain's."""
    if stats is None:
        return '<div class="pg-empty">not run yet</div>'
    ratio = _times(stats, reference, "autoregressive") + _times(stats, chain, "the chain")
    return cards_html([("tokens_per_s", f"{stats.tokens_per_s:.1f}", f"tokens / s{ratio}"),
                       ("mean_accepted", f"{stats.mean_accepted:.2f}", "tokens per target forward"),
                       ("target_forwards", f"{stats.target_forwards}", "target forwards"),
                       ("draft_forwards", f"{stats.draft_forwards}", "draft forwards"),
                       ("wall_s", f"{stats.wall_s:.2f} s", f"wall time · {stats.new_tokens} tokens")], "pg-cmp")


def verdict_html(finished: list[RunFinished | None], running: str = "") -> str:
    """Whether the outputs (the reference's first) are identical (they must be, under greedy decoding), or what is
    running now."""
    done = [f for f in finished if f is not None]
    runs = len(CONTENDERS) + 1
    if not done and not running:
        return '<div class="pg-verdict" data-verdict="none">Press Run to decode the prompt all three ways.</div>'
    if running:
        return f'<div class="pg-verdict" data-verdict="running">Running {html.escape(running)}… ' \
               f'({len(done)} of {runs} done)</div>'
    failed = [f for f in done if f.status != "finished"]
    if failed or len(done) < runs:
        why = html.escape(failed[0].error or failed[0].status) if failed else "not every run ran"
        return f'<div class="pg-verdict pg-differ" data-verdict="failed">Cannot compare: {why}</div>'
    first = done[0].token_ids
    reference = (f'<span class="pg-verdict-ref">Autoregressive decoding (run #{done[0].run_id}): '
                 f'{done[0].stats.tokens_per_s:.1f} tokens/s, one target forward per token.</span>')
    if all(f.token_ids == first for f in done):
        return (f'<div class="pg-verdict pg-same" data-verdict="identical">✓ Outputs identical: all three '
                f'produced the same {len(first)} tokens as autoregressive decoding, as greedy speculative decoding '
                f'must. {reference}</div>')
    at = min(first_difference(first, f.token_ids) for f in done[1:] if f.token_ids != first)
    return (f'<div class="pg-verdict pg-differ" data-verdict="different">✗ Outputs differ from autoregressive '
            f'decoding from token {at} on: under greedy decoding they must be identical, so a method is not '
            f'lossless. {reference}</div>')


def chain_note() -> str:
    return ('<div class="pg-cmp-note">A chain has no tree: each step the draft proposes one line of 4 tokens and '
            'the target accepts a prefix of it. The chips above show, token by token, what was accepted and what '
            'the target put in itself.</div>')
