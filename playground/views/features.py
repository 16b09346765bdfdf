"""Drafting from the target's own features (EAGLE), drawn from a run's events alone (no Gradio here), for the live
view and the replay alike.

`head_html`: the target's decoder layers with the feature the head reads lit (Step.tapped: the last layer's output
after the final norm, what the target's LM head reads), and beside them the head: fc([feature; embedding of the next
token]) -> one decoder layer -> the target's own LM head -> the step's draft tokens, coloured by the verdict. None
for runs that draft otherwise; the app then hides it. Drafted tokens are model text: they go through the chips'
escaping.
"""

from __future__ import annotations

from playground.events import TREE, Step
from playground.views.chain import drafted_chips


def _layer(i: int, lit: bool) -> str:
    """Decoder layer i of the target, its attention and MLP; `lit` when the head reads its output."""
    subs = "".join(f'<span class="pg-sub pg-{kind}" title="layer {i} {name}: run by the target, drafting never '
                   f'runs it">{kind}</span>' for kind, name in (("attn", "attention"), ("mlp", "MLP")))
    return (f'<div class="pg-layer{" pg-tapped" if lit else ""}" data-layer="{i}" data-tapped="{int(lit)}">'
            f'<small>{i}</small>{subs}</div>')


def _this_step(step: Step) -> str:
    """What the head drafted in `step`, and what the target made of it."""
    if not step.drafted:
        return "nothing (the token budget was spent)"
    if step.kind == TREE:
        return f'{drafted_chips(step)} · its path in a tree of {step.proposed} nodes: {step.accepted} accepted'
    return f'{drafted_chips(step)} · {step.accepted} of {len(step.drafted)} accepted'


def head_html(steps: list[Step]) -> str | None:
    """The latest feature-drafting step that drafted (a last step may have had no budget left): the target's layer
    stack with the tapped layer and the final norm lit, and the head beside it with that step's drafts; over the
    run, how many of the head's drafts were accepted."""
    fed = [s for s in steps if s.tapped]
    if not fed:
        return None
    step = next((s for s in reversed(fed) if s.drafted), fed[-1])
    last = step.layers - 1
    tapped = sorted(set(step.tapped))
    where = "its last layer, after the final norm" if tapped == [last] else \
        "layers " + ", ".join(map(str, tapped)) + (" (the last after the final norm)" if last in tapped else "")
    norm = " pg-tapped" if last in tapped else ""
    proposed, accepted = sum(s.proposed for s in fed), sum(s.accepted for s in fed)
    forwards = sum(s.draft_forwards for s in fed)
    rate = f"{accepted / proposed:.0%}" if proposed else "—"
    nodes = "verified tree nodes" if any(s.kind == TREE for s in fed) else "drafted tokens"
    target = (f'<div class="pg-stack" data-role="target"><span class="pg-role">target</span>'
              f'<span class="pg-io">embed →</span>{"".join(_layer(i, i in tapped) for i in range(step.layers))}'
              f'<span class="pg-io">→</span><span class="pg-sub pg-norm{norm}" title="the final norm: its output '
              f'is the feature f the head reads">norm → f</span><span class="pg-io">→ LM head</span></div>')
    head = (f'<div class="pg-stack pg-head" data-role="head"><span class="pg-role">EAGLE head</span>'
            f'<span class="pg-sub pg-tapped" title="the target\'s feature of the newest token (the head\'s own '
            f'prediction of it for tokens not verified yet)">f</span><span class="pg-io">+</span>'
            f'<span class="pg-sub" title="the target\'s embedding of the next token">embed(next token)</span>'
            f'<span class="pg-io">→</span><span class="pg-sub pg-fc" title="one linear map, 2h → h">fc</span>'
            f'<span class="pg-io">→</span><div class="pg-layer" data-head-layer="1"><small>1 layer</small>'
            f'<span class="pg-sub pg-attn">attn</span><span class="pg-sub pg-mlp">mlp</span></div>'
            f'<span class="pg-io">→</span><span class="pg-sub" title="the target\'s own LM head turns the predicted '
            f'feature into the draft distribution q">LM head (the target\'s)</span><span class="pg-io">→</span>'
            f'<span class="pg-drafts" data-drafted="{len(step.drafted)}">{_this_step(step)}</span></div>')
    return (f'<div class="pg-layers pg-eagle" data-tapped="{" ".join(map(str, tapped))}" data-layers="{step.layers}">'
            f'<div class="pg-cap"><b>The EAGLE head drafts from the target\'s own features</b> · it reads {where} '
            f'· step {step.number} · over the run {accepted} of {proposed} {nodes} accepted ({rate}) in '
            f'{forwards} head forwards</div>{target}{head}<div class="pg-note">The head predicts the target\'s next '
            f'feature from its feature and the next token\'s embedding, one layer deep, drafting further on its own '
            f'predictions; the target verifies every draft with all {step.layers} layers in one forward, and its '
            f'features of the accepted tokens feed the next draft.</div></div>')
