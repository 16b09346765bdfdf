"""EAGLE: speculative decoding with a draft head that reads the target's own features (Li et al. 2024, arXiv
2401.15077; EAGLE-2's dynamic tree, arXiv 2406.16858).

The head (`models/eagle.py`, one decoder layer) predicts the target's next feature from its current feature and the
next token, f^_t = Block(fc([f_{t-1}; E x_t])), and the target's own LM head turns f^ into a draft distribution. It
costs a fraction of a draft model's forward and, reading what the target computed, agrees with it far more often.
Drafting needs the target's features of every committed token: the prompt is prefilled (all but its last token)
before the first draft, and every verification keeps the features of the tokens it accepts.

- `tree=chain`: the head drafts up to `gamma` tokens one after another (EAGLE-1's chain) and, by default, stops
  after a token it gave less than `min_confidence` (EAGLE-2's observation: the head's confidence tracks how likely
  the target is to accept); verified as in `speculative`.
- `tree=dynamic` (EAGLE-2): expand the `topk` likeliest nodes per depth by path probability, keep the best `nodes`,
  verify the tree in one forward (`tree_speculative`'s tree attention).
- `tree=static`: a fixed `branching` per depth (EAGLE-1's tree).
Lossless under greedy and sampled decoding, exactly as the chain and tree verifiers it reuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from playground.events import Step
from playground.methods import schedules, tree_speculative
from playground.methods.base import DecodeConfig, Method, Param
from playground.methods.speculative import ModelDrafter, speculate
from playground.methods.tree_speculative import ModelTreeDrafter, parse_branching, tree_speculate
from playground.runtime.eagle_lm import EagleLM


def eagle(target, draft, prompt_ids: list[int], cfg: DecodeConfig, tree: str = "chain", gamma: int = 6,
          nodes: int = 8, depth: int = 6, topk: int = 2, min_path: float = 0.2, branching: str = "2,1,1,1",
          **schedule) -> Iterator[Step]:
    """`draft` is the EAGLE head (a models.eagle.EagleHead); see the module docstring for the parameters. The
    default, a chain of up to 6 that stops after a draft the head gave under 0.4, was the fastest on `complete` on
    the 2-core CPU (docs/BENCHMARKS.md): a head forward costs a sixth of a target forward, and the stop spends none
    on drafts the target would likely reject. A dynamic tree commits more tokens per forward, but verifying its
    nodes costs more there than they bring."""
    head = EagleLM(draft, target)
    if len(prompt_ids) > 1:
        target.forward(prompt_ids[:-1])  # the prompt's features: the first draft reads them (counted in step 0)
    if tree == "chain":
        schedule = schedules.make_schedule(gamma, **{"schedule": "confidence", **schedule})
        steps = speculate(target, ModelDrafter(head, cfg), prompt_ids, cfg, schedule)
    else:
        widths = parse_branching(branching)
        drafter = ModelTreeDrafter(head, cfg, tree, widths, depth, topk, nodes, min_path)
        steps = tree_speculate(target, drafter, prompt_ids, cfg, len(widths) if tree == "static" else depth)
    for step in steps:  # what the views draw of the head: the target's layers, the last one's output tapped
        step.layers, step.tapped = target.num_layers, [target.num_layers - 1]
        yield step


TREE_PARAMS = {p.name: p for p in tree_speculative.METHOD.params}
# the parameters only one shape of `tree` reads, and that shape (methods.chooser)
TREE_SHAPES = {"gamma": ("chain",), "schedule": ("chain",), "branching": ("static",),
               **dict.fromkeys(("nodes", "depth", "topk", "min_path"), ("dynamic",))}

METHOD = Method(
    name="eagle",
    summary="A one-layer head drafts from the target's own features, as a chain or a dynamic tree (EAGLE, "
            "EAGLE-2; lossless).",
    decode=eagle,
    params=(Param("tree", "chain", "chain: gamma tokens one after another (EAGLE); dynamic: expand the likeliest "
                  "nodes, keep the best `nodes` (EAGLE-2); static: fixed branching per depth",
                  choices=("chain", "dynamic", "static")),
            Param("gamma", 6, "chain: the most tokens drafted per step", min=1, max=schedules.MAX_GAMMA),
            replace(schedules.PARAMS[0], default="confidence"), *schedules.PARAMS[1:],
            Param("nodes", 8, TREE_PARAMS["nodes"].help, min=1, max=tree_speculative.MAX_NODES),
            Param("depth", 6, TREE_PARAMS["depth"].help, min=1, max=32),
            Param("topk", 2, TREE_PARAMS["topk"].help, min=1, max=16),
            Param("min_path", 0.2, TREE_PARAMS["min_path"].help, min=0.0, max=1.0),
            Param("branching", "2,1,1,1", TREE_PARAMS["branching"].help)),
    needs_draft=True,
    check=tree_speculative.check,
    check_model=tree_speculative.check_model,
    draft_kinds=("feature",),
)
