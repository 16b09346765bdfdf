"""Tree attention: score every node of a draft tree in ONE target forward, then keep only the accepted path.

A draft tree hangs below the newest committed token (the root, not yet in the KV cache). Node i has a token and a
parent (-1: the root). The forward feeds the root and all nodes at once; each sees the cached prefix, the root and
its own ancestors (an additive 4D attention mask), at the position its depth gives it (root at the cache length,
a node at depth d at that plus d), so its logits are exactly those a plain forward along its own path would give.
Afterwards `keep_path` keeps the keys and values of the root and the accepted path and drops every other branch.
This is the verification step of SpecInfer, Medusa, EAGLE-2 and Token Recycling; the drafters that grow trees are
issue 4's methods.
"""

from __future__ import annotations

import torch

from playground.errors import PlaygroundError
from playground.lm import CachedLM


def depths(parents: list[int]) -> list[int]:
    """Depth of each node (1 for children of the root); parents must come before their children."""
    out: list[int] = []
    for i, p in enumerate(parents):
        if not -1 <= p < i:
            raise ValueError(f"node {i}'s parent {p} must be -1 (the root) or an earlier node")
        out.append(1 if p < 0 else out[p] + 1)
    return out


def tree_mask(parents: list[int], cached: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive mask [1, 1, 1 + n, cached + 1 + n]: row 0 is the root, row 1 + i node i; 0 where attention is
    allowed (the cached prefix, the root, the node's ancestors and itself), the dtype's minimum elsewhere."""
    n = len(parents)
    allowed = torch.zeros(1 + n, cached + 1 + n, dtype=torch.bool)
    allowed[:, : cached + 1] = True  # everyone sees the prefix and the root
    for i, p in enumerate(parents):
        allowed[1 + i, cached + 1 + i] = True
        while p >= 0:
            allowed[1 + i, cached + 1 + p] = True
            p = parents[p]
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def forward_tree(lm: CachedLM, root: int, tokens: list[int], parents: list[int]) -> torch.Tensor:
    """Feed the root and the tree's nodes in one forward; float32 logits [1 + n, vocab] (row 0: after the root)."""
    cached = lm.length
    positions = [cached] + [cached + d for d in depths(parents)]
    dtype = next(lm.model.parameters()).dtype
    try:
        return lm.forward([root, *tokens], keep=1 + len(tokens), attention_mask=tree_mask(parents, cached, dtype),
                          position_ids=torch.tensor([positions]))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PlaygroundError(f"{type(lm.model).__name__} cannot take a tree attention mask: {exc}") from None


def keep_path(lm: CachedLM, cached: int, path: list[int]) -> None:
    """After forward_tree: keep the prefix, the root and the nodes of `path` (node indices, root first down),
    in that order, in every layer's cache; drop the other branches."""
    keep = torch.tensor(list(range(cached + 1)) + [cached + 1 + i for i in path])
    for layer in lm.cache.layers:
        layer.keys = layer.keys.index_select(-2, keep)
        layer.values = layer.values.index_select(-2, keep)


def greedy_path(logits: torch.Tensor, tokens: list[int], parents: list[int]) -> tuple[list[int], int]:
    """Greedy acceptance down the tree: from the root, follow the child whose token is the target's argmax.
    Returns the accepted node indices (root first down) and the target's next token after the last of them."""
    choice = logits.argmax(-1).tolist()
    children: dict[int, list[int]] = {}
    for i, p in enumerate(parents):
        children.setdefault(p, []).append(i)
    path, at = [], -1
    while True:
        want = choice[0 if at < 0 else 1 + at]
        nxt = next((c for c in children.get(at, []) if tokens[c] == want), None)
        if nxt is None:
            return path, want
        path.append(nxt)
        at = nxt
