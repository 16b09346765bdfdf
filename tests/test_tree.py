"""Tree attention (issue 4's verification step): one forward over a whole draft tree gives, for every node, the
logits of a plain forward along its own path, and keeping the accepted path leaves the cache a plain run would
have. On all four architectures and the shipped target."""

from __future__ import annotations

import pytest
import torch
from conftest import PROMPTS

from playground.models import loading as models
from playground.runtime.lm import CachedLM
from playground.runtime.tree_attention import (
    ancestors,
    depths,
    forward_tree,
    greedy_path,
    keep_path,
)

# root -> a, b; a -> c, d; c -> e; b -> f   (node indices 0..5)
PARENTS = [-1, -1, 0, 0, 2, 1]


def path_of(i: int) -> list[int]:
    path = []
    while i >= 0:
        path.append(i)
        i = PARENTS[i]
    return path[::-1]


def test_depths_and_ancestors():
    assert depths(PARENTS) == [1, 1, 2, 2, 3, 2]
    allowed = ancestors(PARENTS).int().tolist()
    assert allowed[4] == [1, 0, 1, 0, 1, 0]        # e: a, c, e
    assert allowed[5] == [0, 1, 0, 0, 0, 1]        # f: b, f
    assert allowed[0] == [1, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError):
        depths([0])


def test_greedy_path_follows_the_argmax_children():
    logits = torch.full((7, 10), -1.0)
    tokens = [5, 6, 7, 8, 9, 3]
    for row, best in ((0, 6), (1 + 1, 3), (1 + 5, 2)):  # root wants 6 (node b), b wants 3 (node f), f wants 2
        logits[row, best] = 1.0
    assert greedy_path(logits, tokens, PARENTS) == ([1, 5], 2)
    logits[0] = -1.0
    logits[0, 0] = 1.0  # no child of the root has token 0
    assert greedy_path(logits, tokens, PARENTS) == ([], 0)


def test_one_tree_forward_equals_plain_forwards_along_each_path(any_pair):
    loaded = models.load(any_pair.target)
    prompt = loaded.tokenizer(PROMPTS[0])["input_ids"]
    tokens = [11, 12, 13, 14, 15, 16]
    lm = CachedLM(loaded.model)
    lm.forward(prompt[:-3])
    cached = lm.length
    every = forward_tree(lm, prompt[-3:], tokens, PARENTS)  # three committed tokens fed with the tree
    assert every.shape[0] == 3 + len(tokens)
    logits = every[2:]
    for i in range(len(PARENTS)):
        plain = CachedLM(loaded.model)
        plain.forward(prompt[:-1])
        expected = plain.forward([prompt[-1]] + [tokens[j] for j in path_of(i)], keep=1)[0]
        torch.testing.assert_close(logits[1 + i], expected, atol=2e-4, rtol=1e-4)
    root_plain = CachedLM(loaded.model)
    torch.testing.assert_close(every[:3], root_plain.forward(prompt, keep=3), atol=2e-4, rtol=1e-4)

    path = path_of(4)  # a, c, e
    keep_path(lm, cached + 3, path)
    fresh = CachedLM(loaded.model)
    fresh.forward(prompt + [tokens[j] for j in path])
    assert lm.length == fresh.length == len(prompt) + len(path)
    for mine, theirs in zip(lm.cache.layers, fresh.cache.layers):
        torch.testing.assert_close(mine.keys, theirs.keys, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(mine.values, theirs.values, atol=2e-4, rtol=1e-4)
    # and decoding goes on from the kept path exactly as from a plain cache
    torch.testing.assert_close(lm.forward([21])[0], fresh.forward([21])[0], atol=2e-4, rtol=1e-4)


def test_a_model_that_ignores_the_tree_mask_is_refused(llama_pair):
    from playground.errors import PlaygroundError
    from playground.runtime.tree_attention import check_tree_attention

    loaded = models.load(llama_pair.target)
    check_tree_attention(loaded.model)  # a real tree mask: accepted

    class IgnoresMasks(torch.nn.Module):  # what an attention implementation with its own causal mask amounts to
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, attention_mask=None, position_ids=None, **kwargs):
            return self.inner(**kwargs)

    with pytest.raises(PlaygroundError, match="ignores custom tree attention masks"):
        check_tree_attention(IgnoresMasks(loaded.model))
