"""Tree methods (tree_speculative static and dynamic, token_recycling): the target's own greedy output token for
token on four architectures and the shipped pair, trees recorded whole and consistent, and lossless sampling."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHS, PROMPTS
from test_draft_free import REPEAT
from test_lossless import NEW, greedy_autoregressive
from test_sampling import VOCAB, assert_fits, assert_rejected, first_token_dists  # noqa: F401 (fixture)

from playground.errors import PlaygroundError
from playground.events import ACCEPTED, BONUS, REPLACEMENT, TreeRecord
from playground.methods.token_recycling import RecyclingDrafter, template
from playground.methods.tree_speculative import parse_branching
from playground.runtime.sampling import Sampling, probs
from playground.runtime.tree_attention import NODE_PRUNED as PRUNED
from playground.runtime.tree_attention import NODE_REJECTED as REJECTED
from playground.runtime.tree_attention import NODE_UNREACHED as UNREACHED
from playground.runtime.tree_attention import sample_path

TREES = {
    "dynamic": ("tree_speculative", {}),
    "dynamic-small-budget": ("tree_speculative", {"nodes": 5, "depth": 4, "topk": 3, "min_path": 0}),
    "dynamic-full-depth": ("tree_speculative", {"depth": 4, "min_path": 0}),
    "static": ("tree_speculative", {"tree": "static", "branching": "3,2,1"}),
    "recycling": ("token_recycling", {}),
}


def check_tree_step(s) -> None:
    """What every tree step must say about itself (greedy)."""
    tree = s.tree or TreeRecord()  # a step that drafted nothing (the token budget) has no tree
    n = len(tree.tokens)
    assert len(tree.parents) == len(tree.q) == len(tree.p) == len(tree.states) == len(tree.rounds) == n
    assert len(tree.texts) == n
    assert all(-1 <= p < i for i, p in enumerate(tree.parents))
    path = [i for i in range(n) if tree.states[i] == ACCEPTED]
    assert len(path) == s.accepted
    # the accepted nodes form one chain from the root, and they are the committed tokens
    assert [tree.parents[i] for i in path] == ([-1] + path)[: len(path)]
    assert s.tokens[: s.accepted] == [tree.tokens[i] for i in path]
    for i in range(n):
        parent = tree.parents[i]
        if tree.states[i] == PRUNED:
            assert tree.p[i] is None
            assert all(tree.states[c] == PRUNED for c in range(n) if tree.parents[c] == i)
        else:
            assert 0.0 <= tree.p[i] <= 1.0 and (parent == -1 or tree.states[parent] != PRUNED)
        if tree.states[i] == REJECTED:
            assert parent == -1 or tree.states[parent] == ACCEPTED
        if tree.states[i] == UNREACHED:
            assert tree.states[parent] in (REJECTED, UNREACHED)
    assert s.gamma == s.proposed == sum(state != PRUNED for state in tree.states)
    assert s.target_forwards == 1, "one target forward verifies the whole tree"
    assert s.drafted[: s.accepted] == s.tokens[: s.accepted]
    if len(s.drafted) > s.accepted:  # greedy: the target turned the walked branch down for a token of its own
        assert s.tokens[s.accepted] != s.drafted[s.accepted] and s.sources[s.accepted] == REPLACEMENT
    elif s.tree and len(s.tokens) > s.accepted:
        assert s.sources[s.accepted] in (BONUS, REPLACEMENT)


@pytest.mark.parametrize("kind", list(TREES))
def test_tree_methods_greedy_equal_autoregressive(any_pair, run_engine, kind):
    method, params = TREES[kind]
    accepted = verified = 0
    for prompt in (*PROMPTS, REPEAT):
        expected = greedy_autoregressive(run_engine, any_pair, prompt)
        _, steps, finished = run_engine(prompt=prompt, model=any_pair.target, draft=any_pair.draft, method=method,
                                        params=params, max_new_tokens=NEW, stop_at_eos=False)
        assert finished.status == "finished", finished.error
        assert finished.token_ids == expected, f"{kind} differs from greedy on {prompt!r}"
        for s in steps:
            check_tree_step(s)
        accepted += sum(s.accepted for s in steps)
        verified += sum(s.proposed for s in steps)
        assert finished.stats.target_forwards == len(steps)
        if kind == "dynamic-small-budget":
            assert all(s.proposed <= 5 for s in steps)
            assert any(s.tree and PRUNED in s.tree.states for s in steps), "a budget of 5 prunes something"
        if method == "tree_speculative":
            assert all(s.draft_forwards >= 1 for s in steps[:-1])
    assert accepted < verified
    # A random model's next token hangs on its whole context, so the matrix of token_recycling, which remembers
    # only what followed each token last time, is never right on them; the trained model is.
    assert accepted > 0 or (kind == "recycling" and any_pair.arch in ARCHS)  # random models seldom repeat


def test_static_tree_has_the_branching_it_was_given(shipped_pair, run_engine):
    _, steps, _ = run_engine(prompt=PROMPTS[0], model=shipped_pair.target, draft=shipped_pair.draft,
                             method="tree_speculative", params={"tree": "static", "branching": "3,2,1"},
                             max_new_tokens=24, stop_at_eos=False)
    full = [s for s in steps if s.tree and len(s.tree.tokens) == 3 + 6 + 6]
    assert full, "a step with room for the whole tree"
    s = full[0]
    assert sum(p == -1 for p in s.tree.parents) == 3
    assert s.draft_forwards == 3, "one draft forward per depth"
    assert PRUNED not in s.tree.states


def test_dynamic_trees_stop_growing_where_the_draft_is_unsure(shipped_pair, run_engine):
    """min_path: a tree grows another depth only while its likeliest new node is at least that probable."""
    def run(min_path: float):
        _, steps, finished = run_engine(prompt=PROMPTS[0], model=shipped_pair.target, draft=shipped_pair.draft,
                                        method="tree_speculative", params={"depth": 6, "min_path": min_path},
                                        max_new_tokens=40, stop_at_eos=False)
        return steps[:-1], finished  # the last step's depth is cut by the token budget

    full, full_run = run(0.0)
    assert all(s.draft_forwards == 6 for s in full if len(s.tokens) < 7)
    sure, sure_run = run(0.999)
    assert all(s.draft_forwards == 1 for s in sure), "nothing is that probable: one draft forward, one depth"
    assert all(max(r for r in s.tree.rounds) == 0 for s in sure)
    some, _ = run(0.3)
    assert 1 < sum(s.draft_forwards for s in some) / len(some) < 6
    assert full_run.token_ids == sure_run.token_ids


def test_bad_tree_parameters_are_refused(run_engine):
    for bad in ("", "a,b", "0,2", "3,,x", "17", "16,16,16"):
        with pytest.raises(PlaygroundError):
            parse_branching(bad)
    assert parse_branching(" 4, 2,1 ") == [4, 2, 1]


def test_token_recycling_template_and_matrix():
    shape = template(nodes=10, depth=3, k=4)
    assert len(shape) == 10 and shape[0] == (-1, 0)
    assert all(parent < i for i, (parent, _) in enumerate(shape))
    vocab = 16
    drafter = RecyclingDrafter(vocab=vocab, k=4, nodes=10, depth=3)
    assert drafter.bytes == vocab * 4 * (4 + 2)
    assert len(drafter.grow([1, 2, 3], depth=3)) == 0, "an empty matrix drafts nothing"
    logits = torch.full((2, vocab), -5.0)
    logits[0, [7, 8, 9, 10]] = torch.tensor([4.0, 3.0, 2.0, 1.0])  # after token 3
    logits[1, [3, 5]] = torch.tensor([4.0, 3.0])                     # after token 7
    drafter.verified(logits, [3, 7])
    tree = drafter.grow([1, 2, 3], depth=3)
    assert tree.tokens[0] == 7 and tree.parents[0] == -1  # the best candidate after the root, token 3
    children_of_7 = [tree.tokens[i] for i in range(len(tree)) if tree.parents[i] == 0]
    assert children_of_7[:2] == [3, 5]
    assert max(tree.depth(i) for i in range(len(tree))) <= 3


SAMPLINGS = {"t1": Sampling(temperature=1.0), "t0.7-topk": Sampling(temperature=0.7, top_k=4)}


@pytest.mark.parametrize("sampling", list(SAMPLINGS), ids=list(SAMPLINGS))
def test_tree_sampling_keeps_the_target_distribution(sampling):
    """Multi-round rejection over siblings: the first committed token is distributed as p after the root, and the
    second, after each first token, as p after that node, whichever candidates the tree holds."""
    s = SAMPLINGS[sampling]
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(7, VOCAB, generator=g) * 1.5
    p = probs(logits, s)
    order = p[0].argsort(descending=True).tolist()
    # root -> a (likely), b (less likely), c (unlikely); a -> d, e; b -> f.  Rows: 0 root, 1 + i node i.
    tokens = [order[0], order[2], order[-1], 1, 2, 3]
    parents = [-1, -1, -1, 0, 0, 1]
    gen = torch.Generator().manual_seed(11)
    first = torch.zeros(VOCAB, dtype=torch.long)
    second_after_a = torch.zeros(VOCAB, dtype=torch.long)
    accepted_depths = torch.zeros(3, dtype=torch.long)
    runs = 6000
    for _ in range(runs):
        path, nxt = sample_path(p, tokens, parents, gen)
        committed = [tokens[c] for c in path] + [nxt]
        first[committed[0]] += 1
        accepted_depths[len(path)] += 1
        if committed[0] == tokens[0]:
            second_after_a[committed[1]] += 1
    assert (accepted_depths > 0).all(), accepted_depths.tolist()  # rejections at the root, at depth 1, and none
    assert_fits(first, p[0], f"first committed token ({sampling})")
    assert_fits(second_after_a, p[1], f"second token after node a ({sampling})")
    draft_like = torch.zeros(VOCAB)
    draft_like[tokens[:3]] = 1 / 3  # a tree that always kept its candidates would look like this
    assert_rejected(first, draft_like)


def test_engine_tree_first_token_follows_the_target(llama_pair, run_engine, first_token_dists):
    """End to end through the engine, sampled: the first generated token of a dynamic tree run is distributed as
    the target's p, not as the draft's q."""
    from test_sampling import E2E_SAMPLING, _counts, _first_tokens
    prompt, p, q = first_token_dists
    tokens = _first_tokens(run_engine, llama_pair, prompt, "tree_speculative", draft=llama_pair.draft,
                           params={"nodes": 6, "depth": 2, "topk": 3})
    counts = _counts(tokens, p)
    assert_fits(counts, p, "tree_speculative, first generated token")
    assert_rejected(counts, q)
    _, steps, _ = run_engine(prompt=prompt, model=llama_pair.target, draft=llama_pair.draft,
                             method="tree_speculative", max_new_tokens=3, **E2E_SAMPLING)
    assert steps[0].tree
