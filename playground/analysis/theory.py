"""What the theory of speculative decoding predicts for a run, next to what the run measured (no Gradio here).

Chains, Leviathan et al. 2023 (arXiv 2211.17192), section 3: if each drafted token is accepted independently with
the same probability alpha, a step that drafts gamma tokens commits (1 - alpha^(gamma+1)) / (1 - alpha) tokens on
average (the accepted ones plus the target's own), and the ideal speedup over autoregressive decoding is
tau / (gamma * c + v): tau tokens per target forward, c the cost of a draft forward and v the cost of the verifying
forward, both in target forwards of autoregressive decoding. alpha is estimated from the run itself:
accepted / (accepted + rejections), the maximum-likelihood estimate for i.i.d. acceptance cut off at each step's draft
length. Where the run's acceptance is not i.i.d. (it falls with the position in the draft, or comes in streaks, as
copied drafts do) the measured tokens per forward part from the predicted ones; `by_position` shows where.

Trees, Sequoia's positional acceptance (Chen et al. 2024, arXiv 2402.12374): once a node is accepted, its children,
ranked by draft probability, are tried in turn, and the k-th is accepted with probability p_k when the ones before it
were not. A node of rank k is then accepted with the probability that its parent was, times
(1 - p_1) ... (1 - p_{k-1}) p_k, and a step commits 1 + the sum of that over its verified nodes. p_k is estimated
from the run: of the times the k-th child was tried, the share accepted (`by_rank`). A chain is the tree with one
child a node, p_1 = alpha.

Diffusion and DAG runs, and autoregressive ones, have no prediction (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from playground.events import CHAIN, TREE, Stats, Step
from playground.runtime.tree_attention import NODE_ACCEPTED, NODE_PRUNED


def chain_steps(steps: list[Step]) -> list[Step]:
    """The steps of a run that drafts chains, or [] for any other run (autoregressive, trees, canvases, graphs)."""
    if any(s.kind != CHAIN for s in steps) or not any(s.drafted for s in steps):
        return []
    return steps


def tree_steps(steps: list[Step]) -> list[Step]:
    """The steps of a run that drafts trees, or []."""
    if any(s.kind == TREE for s in steps) and all(s.kind == TREE or not s.drafted for s in steps):
        return steps
    return []


def acceptance(steps: list[Step]) -> float | None:
    """alpha: accepted drafted tokens / drafted tokens the target looked at (accepted + the first rejected)."""
    accepted = sum(s.accepted for s in steps)
    rejected = sum(s.accepted < len(s.drafted) for s in steps)
    return accepted / (accepted + rejected) if accepted + rejected else None


def ranked_children(step: Step) -> dict[int, list[int]]:
    """Each verified node's verified children (-1: the root's), most likely first by draft probability; none for a
    step without a tree (drafting stopped at the token budget)."""
    children: dict[int, list[int]] = {}
    if step.tree is None:
        return children
    for i, (parent, state) in enumerate(zip(step.tree.parents, step.tree.states)):
        if state != NODE_PRUNED:
            children.setdefault(parent, []).append(i)
    for kids in children.values():
        kids.sort(key=lambda i: -step.tree.q[i])  # stable: ties keep the drafter's order
    return children


def by_rank(steps: list[Step]) -> list[tuple[int, int, int]]:
    """(sibling rank k, times the k-th child of an accepted node was tried, times it was accepted)."""
    tried: dict[int, list[int]] = {}
    for s in tree_steps(steps):
        for parent, kids in ranked_children(s).items():
            if parent >= 0 and s.tree.states[parent] != NODE_ACCEPTED:
                continue
            taken = next((k for k, i in enumerate(kids, 1) if s.tree.states[i] == NODE_ACCEPTED), None)
            for k in range(1, len(kids) + 1 if taken is None else taken + 1):
                tried.setdefault(k, [0, 0])
                tried[k][0] += 1
                tried[k][1] += k == taken
    return [(k, n, a) for k, (n, a) in sorted(tried.items())]


def node_acceptance(step: Step, p: dict[int, float]) -> list[float]:
    """The probability that each node of the step's tree is accepted under positional acceptance p (by sibling
    rank); 0 for pruned nodes."""
    children, reach = ranked_children(step), {-1: 1.0}
    nodes = len(step.tree.tokens) if step.tree is not None else 0
    for parent in [-1, *range(nodes)]:  # parents come before their children
        miss = reach.get(parent, 0.0)
        for k, i in enumerate(children.get(parent, []), 1):
            reach[i] = miss * p.get(k, 0.0)
            miss *= 1 - p.get(k, 0.0)
    return [reach.get(i, 0.0) for i in range(nodes)]


def tree_expected_tokens(step: Step, p: dict[int, float]) -> float:
    """Tokens the step's verified tree commits on average under positional acceptance p: its accepted nodes and
    the target's own token."""
    return 1.0 + sum(node_acceptance(step, p))


def expected_tokens(alpha: float, gamma: int) -> float:
    """Tokens a step drafting `gamma` commits on average, each draft token accepted with probability alpha."""
    if alpha >= 1.0:
        return gamma + 1.0
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def ideal_speedup(alpha: float, gamma: int, c: float, v: float) -> float:
    """Leviathan et al.'s speedup of drafting `gamma` tokens a step: tokens per step over the step's cost in
    autoregressive target forwards (gamma draft forwards of cost c, one verification of cost v)."""
    return expected_tokens(alpha, gamma) / (gamma * c + v)


def predicted_tokens(steps: list[Step], alpha: float) -> list[float]:
    """Per step, the tokens theory expects for the length drafted then."""
    return [expected_tokens(alpha, len(s.drafted)) for s in steps]


def by_position(steps: list[Step]) -> list[tuple[int, int, int]]:
    """(position in the draft, steps whose target looked at it, steps that accepted it), from position 1."""
    longest = max((len(s.drafted) for s in steps), default=0)
    rows = []
    for i in range(1, longest + 1):
        reached = sum(len(s.drafted) >= i and s.accepted >= i - 1 for s in steps)
        if reached:
            rows.append((i, reached, sum(s.accepted >= i for s in steps)))
    return rows


@dataclass
class Prediction:
    kind: str            # "chain" (i.i.d. alpha) or "tree" (positional acceptance by sibling rank)
    alpha: float         # chains: alpha; trees: p_1, the acceptance of a node's likeliest child
    measured: float      # tokens per target forward, measured
    predicted: float     # tokens per target forward the theory predicts for the drafts made
    per_step: list[float]  # the tokens it predicts for each step
    forwards: list[int]  # the target forwards of each step
    rows: list[tuple[int, int, int]]  # what the acceptance was estimated from: by_position (chains), by_rank (trees)


def predict(steps: list[Step]) -> Prediction | None:
    """What theory predicts for the drafts a run made (chains: i.i.d. alpha; trees: positional acceptance), next to
    what it measured; None for runs without a theory or without a draft the target looked at."""
    chain, trees = chain_steps(steps), tree_steps(steps)
    if chain:
        alpha, rows = acceptance(chain), by_position(chain)
        expected = predicted_tokens(chain, alpha) if alpha is not None else []
    elif trees:
        rows = by_rank(trees)
        p = {k: a / n for k, n, a in rows}
        alpha = p.get(1)
        expected = [tree_expected_tokens(s, p) for s in trees]
    else:
        return None
    runs = chain or trees
    forwards = [s.target_forwards for s in runs]
    if alpha is None or not sum(forwards):
        return None
    return Prediction(kind="chain" if chain else "tree", alpha=alpha,
                      measured=sum(len(s.tokens) for s in runs) / sum(forwards),
                      predicted=sum(expected) / sum(forwards), per_step=expected, forwards=forwards, rows=rows)


@dataclass
class Speedup:
    """A run against an autoregressive run of the same model and prompt, timed one after the other."""
    measured: float          # tokens/s over autoregressive tokens/s
    ideal: float | None      # tau / (draft forwards per step * c + v) with the predicted tau; None: no theory
    from_costs: float        # the same with the measured tau: the speedup if forwards were all that took time
    c: float                 # one draft forward / one autoregressive target forward
    v: float                 # one verifying target forward / one autoregressive target forward
    draft_per_step: float    # draft forwards per step
    other_share: float       # share of the run's wall time outside draft and target forwards
    prediction: Prediction | None  # what the ideal speedup rests on


def speedup(steps: list[Step], stats: Stats, baseline: Stats) -> Speedup | None:
    """The measured speedup over `baseline` (autoregressive), and the one the theory predicts from the costs."""
    if not (steps and stats.target_forwards and stats.verify_s > 0 and baseline.target_forwards
            and baseline.tokens_per_s and baseline.verify_s > 0):
        return None
    one = baseline.verify_s / baseline.target_forwards
    c = stats.draft_s / stats.draft_forwards / one if stats.draft_forwards else 0.0
    v = stats.verify_s / stats.target_forwards / one
    per_step = stats.draft_forwards / len(steps)
    cost = per_step * c + v  # one step, in autoregressive target forwards
    prediction = predict(steps)
    return Speedup(measured=stats.tokens_per_s / baseline.tokens_per_s,
                   ideal=prediction.predicted / cost if prediction else None,
                   from_costs=stats.new_tokens / len(steps) / cost, c=c, v=v, draft_per_step=per_step,
                   other_share=max(0.0, 1 - (stats.draft_s + stats.verify_s) / stats.wall_s) if stats.wall_s else 0.0,
                   prediction=prediction)


def settings_of(steps: list[Step], stats: Stats, baseline: Stats) -> dict | None:
    """A run's acceptance and costs as the Theory tab takes them: alpha, c, v (measured at the run's draft length)
    and, for trees, p_2 and p_3; for chains the mean length drafted (gamma); the measured speedup. None where the
    run has no theory or no autoregressive run to price it against."""
    costs = speedup(steps, stats, baseline)
    prediction = costs.prediction if costs else None
    if prediction is None:
        return None
    tree = prediction.kind == "tree"
    p = {k: a / n for k, n, a in prediction.rows} if tree else {}
    return {"alpha": prediction.alpha, "c": costs.c, "v": costs.v, "p2": p.get(2), "p3": p.get(3),
            "gamma": None if tree else sum(len(s.drafted) for s in steps) / len(steps), "measured": costs.measured}


def best_tree(p: list[float], nodes: int, depth: int) -> tuple[float, list[int]]:
    """Sequoia's dynamic program: of all trees of at most `nodes` drafted nodes and `depth` levels, the one whose
    expected tokens per step under positional acceptance p (p[0] for a node's likeliest child) are highest.
    Returns (expected tokens, the tree as parents, -1 = the root, parents first)."""
    f, miss = [], 1.0
    for pk in p:  # f[k]: the chance that the (k+1)-th child is the one accepted, once its parent is
        f.append(miss * pk)
        miss *= 1 - pk

    @cache
    def subtree(n: int, d: int) -> tuple[float, tuple[int, ...]]:
        """At most n nodes, d levels below a node accepted for sure: (expected accepted nodes, the node counted,
        and the sizes given to its children, likeliest first)."""
        v, sizes = children(n - 1, 0, d - 1) if n > 1 and d > 0 else (0.0, ())
        return 1.0 + v, sizes

    @cache
    def children(r: int, k: int, d: int) -> tuple[float, tuple[int, ...]]:
        """At most r nodes for the children of rank k on (each child's subtree d levels deep)."""
        options = [(0.0, ())]
        if k < len(f):
            for size in range(1, r + 1):
                v, sizes = children(r - size, k + 1, d)
                options.append((f[k] * subtree(size, d)[0] + v, (size, *sizes)))
        return max(options, key=lambda o: o[0])

    parents: list[int] = []

    def build(n: int, d: int, parent: int) -> None:
        for size in subtree(n, d)[1]:
            parents.append(parent)
            build(size, d - 1, len(parents) - 1)

    build(nodes + 1, depth, -1)
    return subtree(nodes + 1, depth)[0], parents
