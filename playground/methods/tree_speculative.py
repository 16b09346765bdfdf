"""Tree speculative decoding with a draft model: static trees (Medusa, Sequoia) and dynamic trees (EAGLE-2, DySpec).

Each step the draft model grows a tree of candidate continuations below the newest committed token, one draft
forward per depth: the nodes of a depth are fed together with a tree attention mask, each child being one of its
parent's most likely next tokens.
- `static`: every node at depth d gets the draft's top `branching[d]` tokens as children (Medusa's fixed tree).
- `dynamic` (EAGLE-2, arXiv 2406.16858; DySpec): a node's score is its path's draft probability, the product of
  the q's from the root down. Each depth expands only the `topk` best-scored new nodes, each with its `topk` best
  children; at the end the tree is reranked and the `nodes` best-scored nodes are kept, the rest pruned. The draft's
  confidence predicts acceptance, so the budget goes where acceptance is likely. The tree stops growing early
  once even its likeliest new node has a path probability below `min_path` (as SpecDec++ stops a chain), so a
  step where the draft is unsure spends fewer draft forwards.
The target then scores every kept node in ONE forward (tree attention, `playground.runtime.tree_attention`), the
longest path it agrees with is committed plus one token of its own, and both caches keep only that path. Greedy:
the path follows the target's argmax; sampling: multi-round rejection over siblings (SpecInfer), so the output keeps
the target's distribution.

`tree_speculate` is the loop both tree methods share; `token_recycling` differs only in its drafter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import torch

from playground.errors import PlaygroundError
from playground.events import Step, TreeRecord
from playground.methods.base import (
    DecodeConfig,
    Method,
    Param,
    Progress,
    TreeDrafter,
    commit_verified,
    draft_budget,
    step_counters,
)
from playground.runtime import tree_attention as trees
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import display_probs, probs

MAX_NODES = 512


def parse_branching(text: str) -> list[int]:
    """'4,2,1' (or '4-2-1', which fits in a bench method spec) -> [4, 2, 1]: children per node at each depth."""
    text = str(text).strip()
    if not re.fullmatch(r"\d+(\s*[,-]\s*\d+)*", text):
        raise PlaygroundError(f"branching must be whole numbers separated by commas, like 4,2,1; got {text!r}")
    widths = [int(part) for part in re.split(r"\s*[,-]\s*", text)]
    if not widths or any(not 1 <= w <= 16 for w in widths) or len(widths) > 16:
        raise PlaygroundError(f"branching needs 1 to 16 depths of 1 to 16 children each; got {text!r}")
    size = sum(math.prod(widths[:d + 1]) for d in range(len(widths)))
    if size > MAX_NODES:
        raise PlaygroundError(f"branching {text!r} makes a tree of {size} nodes; at most {MAX_NODES}")
    return widths


class ModelTreeDrafter:
    """Grows a static or dynamic draft tree with a small causal LM, one forward per depth, on its own KV cache."""

    def __init__(self, lm: CachedLM, cfg: DecodeConfig, shape: str, branching: list[int], depth: int, topk: int,
                 nodes: int, min_path: float):
        self.lm, self.cfg, self.shape = lm, cfg, shape
        self.widths = branching if shape == "static" else [topk] * depth
        self.topk, self.nodes = topk, nodes
        self.least = math.log(min_path) if min_path > 0 else -math.inf

    def dist(self, logits: torch.Tensor) -> torch.Tensor:
        """What ranks children: the draft's plain softmax under greedy decoding, its sampling distribution else."""
        return display_probs(logits) if self.cfg.sampling.greedy else probs(logits, self.cfg.sampling)

    def grow(self, committed: list[int], depth: int) -> trees.DraftTree:
        tree = trees.DraftTree()
        n = len(committed)
        logits = self.lm.forward(committed[self.lm.length:])[-1:]  # after the root
        frontier, slots = [-1], {}  # nodes whose children come next; node -> its place in the draft's cache
        for r, width in enumerate(self.widths[:depth]):
            made = []
            top = self.dist(logits).topk(width, dim=-1)
            for parent, qs, tokens in zip(frontier, top.values.tolist(), top.indices.tolist()):
                base = tree.score[parent] if parent >= 0 else 0.0
                made += [tree.add(t, parent, q, base + math.log(q), r) for q, t in zip(qs, tokens) if q > 0]
            if r + 1 == min(depth, len(self.widths)) or not made:
                break
            if self.shape == "dynamic":  # expand only the best-scored nodes of this depth, if any is likely enough
                made = sorted(made, key=lambda i: -tree.score[i])[:self.topk]
                if tree.score[made[0]] < self.least:
                    break
            logits = self.expand(tree, made, slots, n)
            frontier = made
        self.lm.crop(n)  # the draft keeps only committed tokens; the accepted ones come back as input next step
        if self.shape == "dynamic" and len(tree) > self.nodes:  # rerank: parents outscore children, so this is a tree
            best = set(sorted(range(len(tree)), key=lambda i: (-tree.score[i], tree.depth(i)))[:self.nodes])
            tree.kept = [i in best for i in range(len(tree))]
        return tree

    def expand(self, tree: trees.DraftTree, nodes: list[int], slots: dict[int, int], committed: int) -> torch.Tensor:
        """Feed `nodes` to the draft after the committed tokens and the nodes fed before; each sees the committed
        tokens, its ancestors' cache slots and itself. Returns the draft's logits after each node."""
        cached = self.lm.length
        allowed = torch.zeros(len(nodes), cached + len(nodes), dtype=torch.bool)
        allowed[:, :committed] = True
        for row, i in enumerate(nodes):
            allowed[row, cached + row] = True
            p = tree.parents[i]
            while p >= 0:
                allowed[row, slots[p]] = True
                p = tree.parents[p]
            slots[i] = cached + row
        positions = [committed - 1 + tree.depth(i) for i in nodes]
        return trees.forward_nodes(self.lm, [tree.tokens[i] for i in nodes], positions, allowed)

    def verified(self, logits: torch.Tensor, tokens: list[int]) -> None:
        pass  # learns nothing from the target's logits

    def take_counters(self) -> tuple[int, float]:
        return self.lm.take_counters()


def walked(tree: trees.DraftTree, index: list[int], path: list[int], tokens: list[int],
           parents: list[int]) -> tuple[list[str], int | None]:
    """Each drafted node's fate, and the verified node the target turned down first (the best child of the last
    accepted node), if it had any."""
    state = [trees.NODE_PRUNED] * len(tree)
    for i in index:
        state[i] = trees.NODE_UNREACHED
    on_path = set(path)
    tested = [c for c in range(len(tokens)) if (parents[c] == (path[-1] if path else -1)) and c not in on_path]
    for c in range(len(tokens)):
        if c in on_path:
            state[index[c]] = trees.NODE_ACCEPTED
        elif parents[c] == -1 or parents[c] in on_path:
            state[index[c]] = trees.NODE_REJECTED
    first = max(tested, key=lambda c: tree.q[index[c]]) if tested else None
    return state, first


def tree_speculate(target: CachedLM, drafter: TreeDrafter, prompt_ids: list[int], cfg: DecodeConfig,
                   max_depth: int) -> Iterator[Step]:
    """Grow a draft tree, verify it in one target forward, commit the accepted path; one Step per verification."""
    run = Progress(list(prompt_ids), cfg.sampling.generator())
    while not run.done:
        committed, n = run.committed, len(run.committed)
        depth = draft_budget(max_depth, run.produced, cfg)
        tree = drafter.grow(committed, depth) if depth > 0 else trees.DraftTree()
        kept, tokens, parents = tree.verified()
        fresh = committed[target.length:]
        every = trees.forward_tree(target, fresh, tokens, parents)
        logits = every[len(fresh) - 1:]  # row 0: after the root; row 1 + c: after node c
        shown = display_probs(logits) if cfg.sampling.greedy else probs(logits, cfg.sampling)
        if cfg.sampling.greedy:
            path, next_token = trees.greedy_path(logits, tokens, parents)
        else:
            path, next_token = trees.sample_path(shown, tokens, parents, run.gen)
        trees.keep_path(target, n, path)  # cache: every committed token, then the accepted path
        drafter.verified(every, fresh + tokens)
        node_p = [float(shown[1 + parents[c], tokens[c]]) for c in range(len(tokens))]  # p(token | ancestors)
        state, first = walked(tree, kept, path, tokens, parents)
        chain = path + ([first] if first is not None else [])
        accepted = [tokens[c] for c in path]
        new, sources, done = commit_verified(accepted, next_token, len(tokens), run.produced, cfg,
                                             whole=first is None and bool(path))
        p_tree = [None] * len(tree)
        for c, i in enumerate(kept):
            p_tree[i] = node_p[c]
        yield Step(index=run.index, tokens=new, sources=sources,
                   p=([node_p[c] for c in path] + [float(shown[1 + path[-1] if path else 0, next_token])])[:len(new)],
                   q=([tree.q[kept[c]] for c in path] + [None])[:len(new)],
                   drafted=[tokens[c] for c in chain], draft_p=[node_p[c] for c in chain],
                   draft_q=[tree.q[kept[c]] for c in chain], accepted=len(path), gamma=len(tokens),
                   tree=TreeRecord(tokens=tree.tokens, parents=tree.parents, q=tree.q, p=p_tree, states=state,
                                   rounds=tree.rounds) if tree.tokens else None,
                   **step_counters(target, drafter))
        run.advance(new, done)


def tree_speculative(target: CachedLM, draft: CachedLM, prompt_ids: list[int], cfg: DecodeConfig,
                     tree: str = "dynamic", nodes: int = 8, depth: int = 8, topk: int = 3, min_path: float = 0.3,
                     branching: str = "2,2,1") -> Iterator[Step]:
    widths = parse_branching(branching)
    drafter = ModelTreeDrafter(draft, cfg, tree, widths, depth, topk, nodes, min_path)
    return tree_speculate(target, drafter, prompt_ids, cfg, len(widths) if tree == "static" else depth)


def check(params: dict) -> None:
    parse_branching(params["branching"])


def check_model(params: dict, model) -> None:
    trees.check_tree_attention(model)


METHOD = Method(
    name="tree_speculative",
    summary="Draft model grows a tree of alternatives; the target verifies the whole tree in one forward "
            "(lossless).",
    decode=tree_speculative,
    params=(Param("tree", "dynamic", "dynamic: expand the likeliest nodes, keep the best `nodes` (EAGLE-2); "
                  "static: fixed branching per depth (Medusa)", choices=("dynamic", "static")),
            Param("nodes", 8, "dynamic: node budget, the nodes sent to the target", min=1, max=MAX_NODES),
            Param("depth", 8, "dynamic: deepest tree (draft forwards per step, at most)", min=1, max=32),
            Param("topk", 3, "dynamic: nodes expanded per depth, and children per expanded node", min=1, max=16),
            Param("min_path", 0.3, "dynamic: stop growing once the likeliest new node's path probability (product "
                  "of q from the root) is below this; 0 = always grow to full depth", min=0.0, max=1.0),
            Param("branching", "2,2,1", "static: children per node at each depth, e.g. 3,2,1 or 3-2-1")),
    needs_draft=True,
    check=check,
    check_model=check_model,
)
