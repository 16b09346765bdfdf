"""EAGLE (methods/eagle.py, runtime/eagle_lm.py): lossless whatever its head, on both runtimes.

Greedy: chain, dynamic and static trees give autoregressive decoding's output token for token, with the shipped
tiny-code-eagle on tiny-code (where drafts are both accepted and rejected) and with random heads on random Llama,
Qwen2 and GPT-2 targets (GPT-2: the transformers runtime, the head reading its base model's last hidden state).
Sampled: the first generated token follows the target's distribution, not the head's (chi-square, as in
test_sampling.py). A head that does not fit is one line. And EagleLM's rollback: rows fed with the head's own
predicted features are dropped after each verification and fed again with the target's, so after every step the
head's cache is what a fresh head computes from the committed tokens.
"""

from __future__ import annotations

import pytest
import torch
from conftest import PROMPTS, _arch_pair, one_error_line
from test_lean_methods import autoregressive_on
from test_sampling import E2E_SAMPLING, _counts, _first_tokens, assert_fits, assert_rejected

from playground.methods.base import DecodeConfig
from playground.methods.schedules import make_schedule
from playground.methods.speculative import ModelDrafter, speculate
from playground.methods.tree_speculative import ModelTreeDrafter, tree_speculate
from playground.models import loading as models
from playground.runtime.eagle_lm import EagleLM
from playground.runtime.lean import LeanLM
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import Sampling, probs

HEAD = "tiny-code-eagle"
NEW = 48
TREES = {"chain": {"tree": "chain", "gamma": 4}, "dynamic": {"tree": "dynamic"}, "static": {"tree": "static"}}
RANDOM_TREES = {"chain": {"tree": "chain", "gamma": 4},  # a random head's q is flat: grow its trees anyway
                "dynamic": {"min_path": 0, "depth": 4, "nodes": 8},
                "static": {"tree": "static", "branching": "3,2,1"}}
RUNTIMES = ("lean", "transformers")


@pytest.fixture(scope="module")
def shipped_head(shipped_pair) -> str:
    assert HEAD in models.shipped_models(), f"assets/models/{HEAD} is missing"
    return HEAD


def run_eagle(run_engine, target: str, head: str, prompt: str, params: dict, runtime: str, new: int = NEW):
    """An eagle run on `runtime` (checked to be the one that ran); returns its steps and its output."""
    started, steps, finished = run_engine(prompt=prompt, model=target, draft=head, method="eagle", params=params,
                                          max_new_tokens=new, stop_at_eos=False, runtime=runtime)
    assert finished.status == "finished", finished.error
    assert started.settings["runtime"] == runtime and started.draft == head
    return steps, finished.token_ids


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("tree", list(TREES))
def test_shipped_head_greedy_equals_autoregressive(shipped_pair, shipped_head, run_engine, tree, runtime):
    """tiny-code with tiny-code-eagle: autoregressive's output for each prompt (one of a single token: the head's
    first row reads no feature), one target forward per step after the first, and drafts accepted and rejected."""
    accepted = drafted = 0
    for prompt in (*PROMPTS, "x"):
        steps, output = run_eagle(run_engine, shipped_pair.target, shipped_head, prompt, TREES[tree], runtime)
        assert output == autoregressive_on(run_engine, shipped_pair.target, prompt, runtime, NEW), \
            f"eagle {tree} on {runtime} differs from autoregressive on {prompt!r}"
        assert all(s.target_forwards == 1 for s in steps[1:]), "one target forward verifies each draft"
        accepted += sum(s.accepted for s in steps)
        drafted += sum(len(s.drafted) for s in steps)
    assert 0 < accepted < drafted, f"accepted {accepted} of {drafted}: the identity proves little"


RANDOM_CASES = [(arch, tree, runtime) for arch in ("llama", "qwen2") for tree in RANDOM_TREES for runtime in RUNTIMES]
RANDOM_CASES += [("gpt2", tree, "transformers") for tree in RANDOM_TREES]


@pytest.mark.parametrize("arch,tree,runtime", RANDOM_CASES)
def test_random_heads_greedy_equal_autoregressive(model_root, random_head, run_engine, arch, tree, runtime):
    """A randomly initialised head (EagleHead(EagleConfig.for_target(...)), GPT-2's as wide as it) on a random
    target: autoregressive's output; its drafts are all but never accepted, so every step rolls back."""
    pair = _arch_pair(arch, model_root)
    head = random_head(pair)
    for prompt in PROMPTS[:2]:
        steps, output = run_eagle(run_engine, pair.target, head, prompt, RANDOM_TREES[tree], runtime, new=24)
        assert output == autoregressive_on(run_engine, pair.target, prompt, runtime, 24)
        assert all(s.drafted for s in steps[:-1])


# ------------------------------------------------------------ sampling

CANDIDATES = (*PROMPTS, "def fibonacci(n):", "for i in range(", "        return self.", "if __name__ ==",
              "x = [1, 2, 3]\ny =")


@pytest.fixture(scope="module")
def head_first_token_dists(shipped_pair, shipped_head):
    """Of the candidate prompts, the one where the head's first draft distribution q is furthest both from agreeing
    with the target's p and from disagreeing with it (the overlap sum(min(p, q)) nearest 1/2): drafts are then
    accepted and rejected, and counts that fit p do not fit q. Returns (prompt, p, q) under E2E_SAMPLING."""
    loaded, head = models.load(shipped_pair.target), models.load(shipped_head).model
    s, best = Sampling(**E2E_SAMPLING), None
    for prompt in CANDIDATES:
        ids = loaded.tokenizer(prompt)["input_ids"]
        target = LeanLM(loaded.model)
        drafter = EagleLM(head, target)
        target.forward(ids[:-1])
        q = probs(drafter.forward(ids)[-1], s)
        with torch.inference_mode():
            p = probs(loaded.model(torch.tensor([ids])).logits[0, -1], s)
        overlap = float(torch.minimum(p, q).sum())
        if best is None or min(overlap, 1 - overlap) > best[0]:
            best = min(overlap, 1 - overlap), prompt, p, q
    assert best[0] > 0.2, "no prompt where the head half agrees with the target"
    return best[1:]


@pytest.mark.parametrize("tree", ["chain", "dynamic"])
def test_eagle_sampling_follows_the_target(shipped_pair, shipped_head, run_engine, head_first_token_dists, tree):
    """Sampled (temperature 1, top-k 5), 300 seeds: the first generated token is distributed as the target's p,
    not as the head's q, with a chain (speculative acceptance) and a dynamic tree (rejection over siblings)."""
    prompt, p, q = head_first_token_dists
    tokens = _first_tokens(run_engine, shipped_pair, prompt, "eagle", draft=shipped_head,
                           params={"tree": tree, "gamma": 2, "depth": 2})
    counts = _counts(tokens, p)
    assert_fits(counts, p, f"eagle {tree}, first generated token")
    assert_rejected(counts, q)


# ------------------------------------------------------------ heads that do not fit


@pytest.fixture(scope="module")
def narrow_head(model_root, random_head) -> str:
    """A random head 64 features wide (the random Llama's), not tiny-code's 256."""
    return random_head(_arch_pair("llama", model_root))


@pytest.mark.parametrize("method,draft,words", [
    ("eagle", "narrow", "reads 64-wide features; 'tiny-code' has 256"),
    ("eagle", "tiny-code-draft", "method eagle needs a feature-drafting head (EAGLE)"),
    ("speculative", HEAD, "method speculative needs a causal LM"),
    ("tree_speculative", HEAD, "method tree_speculative needs a causal LM"),
])
def test_heads_that_do_not_fit_are_one_line(shipped_pair, shipped_head, narrow_head, main, db, stored_runs, method,
                                            draft, words):
    """The command line refuses, in one `error:` line and before any run is stored, a head as wide as another
    target, a causal draft given to eagle, and a head given to a method that drafts with a causal LM."""
    draft = narrow_head if draft == "narrow" else draft
    status, out, err = main("generate", "--model", shipped_pair.target, "--method", method, "--draft", draft,
                            "--prompt", "x = 1", "--max-new-tokens", 4, "--db", db)
    assert status == 2 and out == ""
    assert words in one_error_line(err)
    assert stored_runs(db) == []


# ------------------------------------------------------------ EagleLM's rollback


def fresh_rows(head, target_model, runtime, committed: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's predicted features and keys for the committed tokens, computed afresh: a new target's features
    of all but the last, then one head forward over all."""
    target = runtime(target_model)
    drafter = EagleLM(head, target)
    target.forward(committed[:-1])
    drafter.forward(committed)
    return drafter.out[:len(committed)], drafter.keys[:, :, :len(committed)]


def eagle_steps(target, drafter: EagleLM, ids: list[int], cfg: DecodeConfig, tree: str):
    """eagle's own loop (methods/eagle.py) on a drafter the test holds: the prompt's features, then the steps."""
    target.forward(ids[:-1])
    if tree == "chain":
        return speculate(target, ModelDrafter(drafter, cfg), ids, cfg, make_schedule(4))
    return tree_speculate(target, ModelTreeDrafter(drafter, cfg, "dynamic", [], 4, 4, 8, 0.0), ids, cfg, 4)


@pytest.mark.parametrize("runtime", [LeanLM, CachedLM], ids=RUNTIMES)
@pytest.mark.parametrize("tree", ["chain", "dynamic"])
def test_eagle_lm_feeds_rows_again_with_the_targets_features(shipped_pair, shipped_head, runtime, tree):
    """Drafting feeds the head rows whose input is its own predicted feature (provisional: `length` > `real`).
    After each verification that had a draft, the head holds exactly the committed tokens but the newest (`length`
    == `real`), and their predicted features and keys are those of a fresh head over the target's features: nothing
    provisional is left in the cache."""
    target_model, head = models.load(shipped_pair.target).model, models.load(shipped_head).model
    ids = models.load(shipped_pair.target).tokenizer(PROMPTS[0])["input_ids"]
    cfg = DecodeConfig(max_new_tokens=24)
    target = runtime(target_model)
    drafter = EagleLM(head, target)
    provisional, crop = [], drafter.crop
    drafter.crop = lambda length: (provisional.append(drafter.length - drafter.real), crop(length))
    committed = list(ids)
    for step in eagle_steps(target, drafter, ids, cfg, tree):
        rows = drafter.length
        assert rows == drafter.real and (rows == len(committed) or not step.drafted)  # no draft: nothing fed
        out, keys = fresh_rows(head, target_model, runtime, committed[:rows])
        torch.testing.assert_close(drafter.out[:rows], out, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(drafter.keys[:, :, :rows], keys, atol=1e-4, rtol=1e-4)
        committed += step.tokens
    assert max(provisional) > 0, "no draft ever read the head's own features"
    assert len(committed) == len(ids) + 24
