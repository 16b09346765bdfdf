"""Token Recycling (Luo et al. 2024, "Turning Trash into Treasure", arXiv 2408.08696): draft trees with no draft model.

Every target forward computes a distribution over the next token at each position it scores, and all but one of
those candidates are thrown away. Token Recycling keeps them: an adjacency matrix holds, for each token id, the top
`k` next tokens the target last predicted after it. Each step a draft tree is read out of the matrix by breadth-first
search from the newest committed token along a fixed tree template (the child of rank r of a node is the r-th
candidate in its token's row), the target verifies the tree in one forward (`tree_speculative.tree_speculate`), and
the rows of the root and every verified node are overwritten with the candidates of this forward. The prompt's own
forward fills the matrix at the start. The matrix is `vocab x k` token ids plus their probabilities for the view.

The template: if the candidate of rank r were accepted with probability PRIOR[r] at every depth independently, the
`nodes` root-to-node paths most likely to be accepted form the best tree of that size (as in Sequoia); the priors
are how often the shipped target's next token sat at each rank of its row.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator

import torch

from playground.events import Step
from playground.methods.base import DecodeConfig, Method, Param
from playground.methods.tree_speculative import check_model, tree_speculate
from playground.runtime import tree_attention as trees
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import display_probs

# How often the target's next token was the candidate of rank r in the root's row: tiny-code, `complete` prompts,
# 128 tokens, k=8 (705 steps; it was in none of the 8 19% of the time). Ranks 8-15 extrapolated.
PRIOR = (0.576, 0.096, 0.037, 0.027, 0.024, 0.018, 0.016, 0.014, 0.012, 0.01, 0.008, 0.007, 0.006, 0.005, 0.004,
         0.003)


def template(nodes: int, depth: int, k: int) -> list[tuple[int, int]]:
    """The tree template: (parent template node or -1, candidate rank) per node, parents first; the `nodes` paths
    of at most `depth` with the highest product of PRIOR over their ranks."""
    out: list[tuple[int, int]] = []
    heap = [(-math.log(PRIOR[r]), -1, r, 1) for r in range(k)]
    heapq.heapify(heap)
    while heap and len(out) < nodes:
        cost, parent, rank, d = heapq.heappop(heap)
        out.append((parent, rank))
        if d < depth:
            for r in range(k):
                heapq.heappush(heap, (cost - math.log(PRIOR[r]), len(out) - 1, r, d + 1))
    return out


class RecyclingDrafter:
    """The adjacency matrix and the breadth-first read-out of draft trees from it."""

    def __init__(self, vocab: int, k: int, nodes: int, depth: int):
        self.next = torch.full((vocab, k), -1, dtype=torch.int32)  # -1: never seen this token yet
        self.prob = torch.zeros((vocab, k), dtype=torch.float16)
        self.template = template(nodes, depth, k)
        self.k, self.seconds = k, 0.0

    @property
    def bytes(self) -> int:
        return self.next.nbytes + self.prob.nbytes

    def grow(self, committed: list[int], depth: int) -> trees.DraftTree:
        start = time.perf_counter()
        tree, placed = trees.DraftTree(), []  # placed[j]: the tree node of template node j, or None
        for parent, rank in self.template:
            up = placed[parent] if parent >= 0 else -1
            if parent >= 0 and (up is None or tree.depth(up) >= depth):
                placed.append(None)
                continue
            row = committed[-1] if up < 0 else tree.tokens[up]
            token, q = int(self.next[row, rank]), float(self.prob[row, rank])
            if token < 0:
                placed.append(None)
                continue
            score = (tree.score[up] if up >= 0 else 0.0) + math.log(max(q, 1e-9))
            placed.append(tree.add(token, up, q, score, 0 if up < 0 else tree.depth(up)))
        self.seconds += time.perf_counter() - start
        return tree

    def verified(self, logits: torch.Tensor, tokens: list[int]) -> None:
        """Recycle: the row of each token the target just read becomes the target's top-k after it."""
        start = time.perf_counter()
        top = display_probs(logits).topk(self.k, dim=-1)
        rows = torch.tensor(tokens)
        self.next[rows] = top.indices.to(torch.int32)
        self.prob[rows] = top.values.to(torch.float16)
        self.seconds += time.perf_counter() - start

    def take_counters(self) -> tuple[int, float]:
        seconds, self.seconds = self.seconds, 0.0
        return 0, seconds


def token_recycling(target: CachedLM, draft, prompt_ids: list[int], cfg: DecodeConfig, nodes: int = 12,
                    depth: int = 6, k: int = 8) -> Iterator[Step]:
    vocab = target.model.get_output_embeddings().weight.shape[0]
    drafter = RecyclingDrafter(vocab, k, nodes, depth)
    return tree_speculate(target, drafter, prompt_ids, cfg, depth)


METHOD = Method(
    name="token_recycling",
    summary="Drafts a tree from an adjacency matrix of the target's own past top-k predictions; no draft model "
            "(lossless).",
    decode=token_recycling,
    params=(Param("nodes", 12, "tree template size: nodes sent to the target per step", min=1, max=256),
            Param("depth", 6, "deepest level of the tree template", min=1, max=32),
            Param("k", 8, "candidates kept per token in the adjacency matrix", min=1, max=len(PRIOR))),
    check_model=check_model,
)
