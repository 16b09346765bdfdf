"""Every lossless causal method on the lean runtime gives, greedy, the output of autoregressive decoding on it, token
for token: on the shipped tiny-code (with tiny-code-draft and tiny-code-eagle) and on random Llama and Qwen2 targets
(with their random drafts, and random EAGLE heads). Drafts are accepted and rejected on tiny-code, so the static
cache is rolled back (crop, keep_rows, a shared cache under skipping) at every step. And tree methods fill the whole
context on both runtimes: a tree verified near its end takes cache rows past it (the lean cache and the EAGLE head's
used to be full there)."""

from __future__ import annotations

import pytest
from conftest import CONTEXT, PROMPTS, Pair, _arch_pair
from test_draft_free import REPEAT

from playground.models import loading as models

NEW = 32
LEAN_PROMPTS = (PROMPTS[0], REPEAT)  # REPEAT repeats itself: the copying methods draft from it
CASES = {  # name: (method, params, what drafts: a draft model, an EAGLE head, or nothing)
    "speculative": ("speculative", {"gamma": 4}, "draft"),
    "prompt_lookup": ("prompt_lookup", {}, None),
    "self_speculative": ("self_speculative", {}, None),
    "early_exit": ("early_exit", {}, None),
    "copyspec": ("copyspec", {}, "draft"),
    "tree-dynamic": ("tree_speculative", {"min_path": 0, "depth": 4}, "draft"),
    "tree-static": ("tree_speculative", {"tree": "static", "branching": "3,2,1"}, "draft"),
    "token_recycling": ("token_recycling", {}, None),
    "eagle-chain": ("eagle", {"tree": "chain", "gamma": 4}, "head"),
    "eagle-dynamic": ("eagle", {"min_path": 0, "depth": 4, "nodes": 8}, "head"),
    "eagle-static": ("eagle", {"tree": "static", "branching": "3,2,1"}, "head"),
}


@pytest.fixture(scope="module", params=("tiny-code", "llama", "qwen2"))
def drafters(request, model_root, random_head) -> tuple[Pair, str]:
    """A target with its draft model, and its EAGLE head (the shipped one for tiny-code, random ones else)."""
    if request.param == "tiny-code":
        pair = request.getfixturevalue("shipped_pair")
        assert "tiny-code-eagle" in models.shipped_models(), "assets/models/tiny-code-eagle is missing"
        return pair, "tiny-code-eagle"
    pair = _arch_pair(request.param, model_root)
    return pair, random_head(pair)


_greedy: dict[tuple, list[int]] = {}


def autoregressive_on(run_engine, target: str, prompt: str, runtime: str = "lean", new: int = NEW) -> list[int]:
    """Greedy autoregressive decoding on `runtime` (no stop at end-of-text), once per session."""
    key = (target, prompt, runtime, new)
    if key not in _greedy:
        started, _, finished = run_engine(prompt=prompt, model=target, max_new_tokens=new, stop_at_eos=False,
                                          runtime=runtime)
        assert started.settings["runtime"] == runtime and finished.status == "finished", finished.error
        _greedy[key] = finished.token_ids
    return _greedy[key]


@pytest.mark.parametrize("case", list(CASES))
def test_lossless_methods_on_lean_equal_lean_autoregressive(drafters, run_engine, case):
    """Each method's greedy output on lean is lean autoregressive's; on tiny-code some drafts are accepted (and,
    by the identity, the rest rejected and rolled back)."""
    pair, head = drafters
    method, params, drafter = CASES[case]
    accepted = 0
    for prompt in LEAN_PROMPTS:
        draft = {"draft": pair.draft, "head": head, None: None}[drafter]
        started, steps, finished = run_engine(prompt=prompt, model=pair.target, draft=draft, method=method,
                                              params=params, max_new_tokens=NEW, stop_at_eos=False, runtime="lean")
        assert started.settings["runtime"] == "lean"
        assert finished.status == "finished", finished.error
        assert finished.token_ids == autoregressive_on(run_engine, pair.target, prompt), \
            f"{case} on lean differs from lean autoregressive on {prompt!r}"
        accepted += sum(s.accepted for s in steps)
    if pair.arch == "shipped":
        assert accepted > 0, f"{case} never had a draft accepted on tiny-code"


CONTEXT_CASES = {
    "tree-static": ("tree_speculative", {"tree": "static", "branching": "3,2,1"}),
    "tree-dynamic": ("tree_speculative", {"min_path": 0, "topk": 4, "nodes": 8}),
    "eagle-dynamic": ("eagle", {"min_path": 0}),
}


@pytest.mark.parametrize("runtime", ["lean", "transformers"])
@pytest.mark.parametrize("case", list(CONTEXT_CASES))
def test_trees_fill_the_whole_context(llama_pair, run_engine, random_head, case, runtime):
    """Prompt plus budget exactly the context: near its end a tree's nodes take cache rows past the last position
    (their positions stay inside it). The output is still autoregressive's, on both runtimes."""
    method, params = CONTEXT_CASES[case]
    tok = models.load(llama_pair.target).tokenizer
    prompt = "x = [" + ", ".join(str(i) for i in range(60)) + "]\n"
    new = CONTEXT - len(tok(prompt)["input_ids"])
    assert 20 < new < 120, new
    draft = random_head(llama_pair) if method == "eagle" else llama_pair.draft
    _, _, finished = run_engine(prompt=prompt, model=llama_pair.target, draft=draft, method=method, params=params,
                                max_new_tokens=new, stop_at_eos=False, runtime=runtime)
    assert finished.status == "finished", finished.error
    assert finished.token_ids == autoregressive_on(run_engine, llama_pair.target, prompt, new=new)
