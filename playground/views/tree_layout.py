"""Where each node of a draft tree goes in views/tree.py's figure (and the Theory tab's best tree): layers by depth,
siblings in the order of q, rows fitted so that edges never cross. From events alone."""

from __future__ import annotations

from itertools import accumulate

import networkx as nx

from playground.events import BONUS, REPLACEMENT, Step
from playground.runtime.tree_attention import NODE_ACCEPTED, depths

ROOT, TARGET_NODE = -1, -2  # the newest committed token, and the target's own token (replacement or bonus)


def target_parent(step: Step) -> int | None:
    """The node below which the target's own token (replacement or bonus) goes: the last accepted node or the
    root; None when the step committed no such token (the token budget ran out)."""
    if len(step.tokens) != step.accepted + 1 or step.sources[-1] not in (REPLACEMENT, BONUS):
        return None
    depth = depths(step.tree.parents)
    path = [i for i, s in enumerate(step.tree.states) if s == NODE_ACCEPTED]
    return max(path, key=lambda i: depth[i]) if path else ROOT


def positions(step: Step) -> dict[int, tuple[int, float]]:
    """(depth, row) of each node, the root (-1) and the target's own token (-2): layers by depth, siblings in the
    order of q and the layers in depth-first order, so edges never cross. Rows start evenly spread, then each
    node moves toward the middle of its children (a leaf toward its parent) as far as the order and the spacing
    allow, a few times over; the tree is as tall as its widest layer."""
    graph = nx.DiGraph()
    graph.add_node(ROOT)
    extra = target_parent(step)
    if extra is not None:
        graph.add_edge(extra, TARGET_NODE)  # first among its siblings: it sits on top of the rejected ones
    tree = step.tree
    for i in sorted(range(len(tree.tokens)), key=lambda i: -tree.q[i]):
        graph.add_edge(tree.parents[i], i)
    depth = nx.single_source_shortest_path_length(graph, ROOT)
    layers: dict[int, list[int]] = {}
    for node in nx.dfs_preorder_nodes(graph, ROOT):
        if node != ROOT:
            layers.setdefault(depth[node], []).append(node)
    parent = {child: up for up, child in graph.edges}
    kids = {n: list(graph.successors(n)) for n in graph}
    gaps = {d: [0.0] + [1.0 if parent[a] == parent[b] else 1.4 for a, b in zip(nodes, nodes[1:])]
            for d, nodes in layers.items()}
    height = max(sum(g) for g in gaps.values())
    row = {ROOT: height / 2}
    for d, nodes in layers.items():
        row.update(zip(nodes, _fit([height / 2] * len(nodes), gaps[d], height)))
    for _ in range(6):
        for d in [*sorted(layers)[1:], *sorted(layers, reverse=True)]:
            want = [sum(row[c] for c in kids[n]) / len(kids[n]) if kids[n] else row[parent[n]] for n in layers[d]]
            row.update(zip(layers[d], _fit(want, gaps[d], height)))
    row[ROOT] = sum(row[c] for c in kids[ROOT]) / len(kids[ROOT])
    return {n: (depth[n], round(row[ROOT] - y, 3)) for n, y in row.items()}  # the root at 0, first children on top


def _fit(want: list[float], gaps: list[float], height: float) -> list[float]:
    """Rows for one layer, in order, closest (least squares) to `want`, each at least `gaps[i]` below the one
    before, all within [0, height]: pool-adjacent-violators on the rows less their cumulative gaps."""
    offset = list(accumulate(gaps))
    blocks: list[list[float]] = []  # [sum, count] of pooled rows
    for w, o in zip(want, offset):
        blocks.append([w - o, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    free = [min(max(total / count, 0.0), height - offset[-1]) for total, count in blocks for _ in range(int(count))]
    return [z + o for z, o in zip(free, offset)]
