"""Token trees: a draft tree, and tree attention that scores all of it in ONE forward, then keeps one path.

A draft tree hangs below the newest committed token (the root). Node i has a token and a parent (-1: the root);
parents come before their children. `forward_tree` feeds the committed tokens the cache lacks (the root last) and
every node at once: each node sees the committed tokens and its own ancestors (an additive 4D attention mask), at
the position its depth gives it (a node at depth d sits d places after the root), so its logits are exactly those a
plain forward along its own path would give. `keep_path` then keeps the keys and values of the accepted path and
drops every other branch. This is the verification of SpecInfer, Medusa, EAGLE-2 and Token Recycling; the
drafters that grow trees live in `methods/tree_speculative.py` and `methods/token_recycling.py`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from playground.errors import PlaygroundError
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import sample

# What became of a drafted node; the tree view colours and fades nodes by it. (A node's state, not a committed
# token's source: events.ACCEPTED is the latter.)
NODE_ACCEPTED = "accepted"      # on the path the target took
NODE_REJECTED = "rejected"      # a child of the path that the target tested and turned down
NODE_UNREACHED = "unreached"    # verified, but below a rejected node: the target never got there
NODE_PRUNED = "pruned"          # drafted but cut by the node budget: never sent to the target


@dataclass
class DraftTree:
    """Every node a drafter made, in the order it made them (parents first)."""
    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    q: list[float] = field(default_factory=list)       # draft probability of the token given its parent
    score: list[float] = field(default_factory=list)   # log of the path's draft probability (dynamic trees rank by it)
    rounds: list[int] = field(default_factory=list)    # which draft forward made the node (the view grows by it)
    kept: list[bool] = field(default_factory=list)     # False: pruned by the node budget, not verified

    def add(self, token: int, parent: int, q: float, score: float, round_: int) -> int:
        self.tokens.append(token)
        self.parents.append(parent)
        self.q.append(q)
        self.score.append(score)
        self.rounds.append(round_)
        self.kept.append(True)
        return len(self.tokens) - 1

    def __len__(self) -> int:
        return len(self.tokens)

    def depth(self, i: int) -> int:
        d = 0
        while i >= 0:
            i, d = self.parents[i], d + 1
        return d

    def verified(self) -> tuple[list[int], list[int], list[int]]:
        """The kept nodes: their indices in this tree, tokens, and parents renumbered among the kept."""
        index = [i for i in range(len(self)) if self.kept[i]]
        where = {i: j for j, i in enumerate(index)}
        return index, [self.tokens[i] for i in index], [where[self.parents[i]] if self.parents[i] >= 0 else -1
                                                        for i in index]


def depths(parents: list[int]) -> list[int]:
    """Depth of each node (1 for children of the root); parents must come before their children."""
    out: list[int] = []
    for i, p in enumerate(parents):
        if not -1 <= p < i:
            raise ValueError(f"node {i}'s parent {p} must be -1 (the root) or an earlier node")
        out.append(1 if p < 0 else out[p] + 1)
    return out


def ancestors(parents: list[int]) -> torch.Tensor:
    """Bool [n, n]: row i marks node i and its ancestors (not the root)."""
    n = len(parents)
    anc = torch.zeros(n, n, dtype=torch.bool)
    for i, p in enumerate(parents):
        if p >= 0:
            anc[i] = anc[p]
        anc[i, i] = True
    return anc


def forward_nodes(lm: CachedLM, tokens: list[int], positions: list[int], allowed: torch.Tensor) -> torch.Tensor:
    """Feed `tokens` after the cache at their `positions`; `allowed` [n, cached + n] says what each may attend to.
    Returns float32 logits [n, vocab]."""
    try:
        return lm.forward_masked(tokens, positions, allowed)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PlaygroundError(f"{type(lm.model).__name__} cannot take a tree attention mask: {exc}") from None


def forward_tree(lm: CachedLM, fresh: list[int], tokens: list[int], parents: list[int]) -> torch.Tensor:
    """Feed the uncached committed tokens `fresh` (the root last) and the tree's nodes in one forward.
    Returns float32 logits [len(fresh) + n, vocab]: a row after each fresh token, then after each node; the rows
    from the root on (`[len(fresh) - 1:]`) are what acceptance reads: row 0 the root, row 1 + i node i."""
    cached, k, n = lm.length, len(fresh), len(tokens)
    allowed = torch.zeros(k + n, cached + k + n, dtype=torch.bool)
    allowed[:, :cached] = True
    allowed[:k, cached:cached + k] = torch.ones(k, k, dtype=torch.bool).tril()  # committed tokens: causal
    allowed[k:, cached:cached + k] = True  # every node sees all committed tokens, the root included
    allowed[k:, cached + k:] = ancestors(parents)
    root = cached + k - 1
    positions = list(range(cached, cached + k)) + [root + d for d in depths(parents)]
    return forward_nodes(lm, fresh + tokens, positions, allowed)


_mask_ok: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_tree_attention(model: torch.nn.Module) -> None:
    """Refuse, with a clear message, a model that cannot verify trees: one that rejects a custom 4D attention mask,
    or, worse, silently ignores it. A three-node probe tree must give the logits of plain forwards along each path
    (checked once per model)."""
    if model in _mask_ok:
        return
    prefix, nodes, parents = [1, 2, 3], [4, 5, 6], [-1, -1, 0]  # root 3 -> 4, 5; 4 -> 6
    lm = CachedLM(model)
    lm.forward(prefix[:-1])
    got = forward_tree(lm, prefix[-1:], nodes, parents)
    for row, path in ((2, [5]), (3, [4, 6])):
        want = CachedLM(model).forward(prefix + path)[0]
        if not torch.allclose(got[row], want, atol=1e-3 * (1 + float(want.abs().max())), rtol=1e-3):
            raise PlaygroundError(f"{type(model).__name__} ignores custom tree attention masks (its attention "
                                  "implementation builds its own causal mask), so it cannot verify draft trees; "
                                  "use a method without trees")
    _mask_ok[model] = True


def keep_path(lm: CachedLM, committed: int, path: list[int]) -> None:
    """After forward_tree: keep the `committed` tokens and the nodes of `path` (node indices, root's child first),
    in that order, in the cache (every layer's keys and values, and tapped features); drop the other branches."""
    lm.keep_rows(committed, path)


def children_of(parents: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, p in enumerate(parents):
        out.setdefault(p, []).append(i)
    return out


def greedy_path(logits: torch.Tensor, tokens: list[int], parents: list[int]) -> tuple[list[int], int]:
    """Greedy acceptance down the tree: from the root, follow the child whose token is the target's argmax.
    Returns the accepted node indices (root's child first) and the target's next token after the last of them."""
    choice = logits.argmax(-1).tolist()
    children = children_of(parents)
    path, at = [], -1
    while True:
        want = choice[at + 1]
        nxt = next((c for c in children.get(at, []) if tokens[c] == want), None)
        if nxt is None:
            return path, want
        path.append(nxt)
        at = nxt


def sample_path(p: torch.Tensor, tokens: list[int], parents: list[int], gen: torch.Generator) -> tuple[list[int], int]:
    """Lossless acceptance down a tree of deterministic candidates (SpecInfer's multi-round rejection with q
    one-hot on each sibling), given the target's sampling distribution `p` [1 + n, vocab] (row 0 after the root,
    row 1 + i after node i): at a node, try its children in turn; a child is accepted with its probability under
    the target's residual distribution, and each rejected child's token is struck out of that residual. If every
    child is rejected, the next token is sampled from what is left. Each committed token is therefore distributed
    exactly as the target's p given the tokens before it."""
    children = children_of(parents)
    path, at = [], -1
    while True:
        residual = p[at + 1].clone()
        for c in children.get(at, []):
            x = tokens[c]
            mass = float(residual.sum())
            if mass > 0 and float(torch.rand((), generator=gen)) * mass < float(residual[x]):
                break
            residual[x] = 0.0
        else:
            total = float(residual.sum())
            return path, sample(residual / total if total > 0 else p[at + 1], gen)
        path.append(c)
        at = c
