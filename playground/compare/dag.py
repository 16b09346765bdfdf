"""The DAG tab, without Gradio: one French number phrase translated four ways (the DA-Transformer with a chosen
strategy, the autoregressive baseline, gad, the plain NAT), their requests, and their outputs and times side by side
with the verdict: speed against the baseline, and whether gad wrote exactly the baseline's output (it must)."""

from __future__ import annotations

import html
from typing import NamedTuple

from playground.data import numbers
from playground.engine import Request
from playground.events import RunFinished, RunStarted, Step
from playground.views.common import cards_html
from playground.views.dag import drafts_html


class Side(NamedTuple):
    key: str      # used in element ids
    title: str
    note: str


SIDES = (Side("dag", "DAG · DA-Transformer", "one parallel pass, then a path through the graph; lossy"),
         Side("ar", "Autoregressive baseline", "one decoder forward per token, greedy"),
         Side("gad", "GAD · the AR verifies the DAG's draft", "lossless: must equal the baseline"),
         Side("nat", "NAT · the same network, no graph", "one pass, one token per vertex, in order"))
TAB_MODELS = {"dat": "tiny-numbers-dat", "ar": "tiny-numbers-ar", "nat": "tiny-numbers-nat",
              "drafter": "tiny-numbers-dat-kd"}  # gad's draft: a DA-Transformer distilled from the AR model
TAB_MAX_NEW = 48  # the longest phrase, "nine hundred and ninety-nine thousand ...", is 17 tokens with </s>
UNK = "<unk>"


def tab_requests(phrase: str, strategy: str, names: dict[str, str]) -> list[Request]:
    """The four runs, in SIDES order: the DAG with `strategy`, the AR baseline, gad (the AR verifying the drafter),
    and the NAT. `names`: the models, keyed as TAB_MODELS."""
    common = dict(prompt=phrase, max_new_tokens=TAB_MAX_NEW)
    return [Request(model=names["dat"], method="dag", params={"strategy": strategy}, **common),
            Request(model=names["ar"], method="autoregressive", **common),
            Request(model=names["ar"], method="gad", draft=names["drafter"], **common),
            Request(model=names["nat"], method="dag", **common)]


def unknown_words(started: RunStarted | None) -> list[str]:
    """The words of the phrase the models read as <unk> (the tokenizer knows only the task's own words; it splits
    words and hyphens as here)."""
    if started is None or UNK not in started.prompt_texts:
        return []
    pieces = numbers.pieces(started.prompt)
    texts = [t for t in started.prompt_texts if t != "</s>"]
    if len(pieces) != len(texts):
        return [UNK] * texts.count(UNK)
    return [p for p, t in zip(pieces, texts) if t == UNK]


Run = tuple[RunStarted | None, list[Step], RunFinished | None]


def side_html(key: str, run: Run | None, baseline: RunFinished | None = None) -> str:
    """One side's output and numbers; with the AR `baseline`, how many times faster than it."""
    started, steps, finished = run or (None, [], None)
    if finished is None:
        return '<div class="pg-empty">not run yet</div>'
    s = finished.stats
    faster = f" · {baseline.stats.wall_s / s.wall_s:.1f}× the baseline's speed" \
        if baseline is not None and baseline is not finished and s.wall_s else ""
    forwards = (f"{s.target_forwards} + {s.draft_forwards}", "forward passes: the verifier's + the drafter's") \
        if s.draft_forwards else (f"{s.target_forwards}", "forward passes")
    cards = [("wall_s", f"{s.wall_s * 1e3:.1f} ms", f"decoding time{faster}"), ("forwards", *forwards),
             ("new_tokens", f"{s.new_tokens}", "tokens")]
    if s.acceptance_rate is not None:
        accepted = sum(x.accepted for x in steps)
        cards.append(("accepted", f"{accepted} of {sum(x.proposed for x in steps)}", "drafted tokens accepted"))
    text = html.escape(finished.text) if finished.text.strip() else '<span class="pg-empty">(nothing)</span>'
    error = f'<div class="pg-error">{html.escape(finished.error)}</div>' if finished.error else ""
    return (f'<div class="pg-dag-side" data-status="{html.escape(finished.status)}" data-run="{finished.run_id}">'
            f'<div class="pg-dag-output" data-output>{text}</div>{error}{cards_html(cards, "pg-cmp")}'
            f'{drafts_html(steps) or ""}</div>')


def dag_verdict(dag: RunFinished, ar: RunFinished, started: RunStarted | None) -> str:
    """Whether the DAG got the phrase right: by `numbers.judge` when the phrase is a number as the task writes
    them (a correct rendering other than the baseline's is still correct), else against the baseline's tokens."""
    number = numbers.parse_french(started.prompt) if started is not None else None
    if dag.token_ids == ar.token_ids:
        return "the DAG's output equals the baseline's"
    if number is None:
        return "the DAG's output differs from the baseline's (DAG decoding is lossy)"
    return {"correct": f"the DAG's output is another correct rendering of {number:,}",
            "mixed": f"the DAG's output mixes renderings of {number:,} (the multimodality failure)",
            "wrong": f"the DAG's output is wrong for {number:,}"}[numbers.judge(dag.text, number)]


def verdict_html(runs: dict[str, Run | None], running: str = "") -> str:
    """The speedups over the AR baseline, whether gad wrote exactly the baseline's output (it must), and the
    words the models did not know."""
    done = {k: r[2] for k, r in runs.items() if r and r[2] is not None}
    if running:
        return (f'<div class="pg-verdict" data-verdict="running">Running {html.escape(running)}… ({len(done)} of '
                f'{len(SIDES)} done)</div>')
    if not done:
        return '<div class="pg-verdict" data-verdict="none">Press Run to translate the phrase four ways.</div>'
    failed = [f for f in done.values() if f.status != "finished"]
    if failed or len(done) < len(SIDES):
        why = html.escape(failed[0].error or failed[0].status) if failed else "not all four ran"
        return f'<div class="pg-verdict pg-differ" data-verdict="failed">Cannot compare: {why}</div>'
    ar = done["ar"]
    speed = " · ".join(f"{key.upper()} {ar.stats.wall_s / f.stats.wall_s:.1f}×" for key, f in done.items()
                       if key != "ar" and f.stats.wall_s)
    same = done["gad"].token_ids == ar.token_ids
    gad = "GAD's output is identical to the baseline's ✓" if same else \
        "✗ GAD's output differs from the baseline's: it should not"
    dag = dag_verdict(done["dag"], ar, runs["dag"][0])
    unknown = unknown_words(runs["dag"][0])
    note = (f'<div class="pg-note" data-unknown="{len(unknown)}">Not French number words the models know (they read '
            f'them as &lt;unk&gt;): {", ".join(html.escape(repr(w)) for w in unknown)}. Words such as '
            f'"trois cent douze" work; the outputs are what the models make of the rest.</div>') if unknown else ""
    return (f'<div class="pg-verdict {"pg-same" if same else "pg-differ"}" data-verdict='
            f'"{"identical" if same else "different"}">Speed against the autoregressive baseline: {speed} · {gad} · '
            f'{dag}</div>{note}')
