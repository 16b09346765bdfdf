"""Self-speculative decoding (layer skipping, early exit, Unified Layer Skipping): lossless, with exact KV caches.

The draft is the target with sub-layers switched off, running on the target's own cache, so the tests check the
two ways that can go wrong: the output (greedy identity with autoregressive decoding on four architectures and the
shipped model; the sampled first token follows the target) and the cache (after every step each layer holds
exactly the keys and values a fresh full forward over the committed tokens gives).
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import PROMPTS
from test_lossless import NEW, greedy_autoregressive
from test_sampling import _counts, _first_tokens, assert_fits, first_token_dists  # noqa: F401 (a fixture)

from playground.errors import PlaygroundError
from playground.methods import schedules
from playground.methods.base import DecodeConfig
from playground.methods.self_speculative import (
    SelfDrafter,
    parse_skip_list,
    unified_skip,
)
from playground.methods.speculative import speculate
from playground.models import loading as models
from playground.runtime.lm import CachedLM
from playground.runtime.sublayers import Gates, check_skip


@pytest.mark.parametrize("method,params", [
    ("self_speculative", {}),                                   # auto: uls for the test models
    ("self_speculative", {"skip": "1.attn,2.mlp", "schedule": "constant", "gamma": 4}),
    ("self_speculative", {"skip": "uls", "schedule": "heuristic"}),
    ("early_exit", {"schedule": "confidence"}),
    ("early_exit", {"exit_layer": 2, "schedule": "specdecpp"}),
], ids=["auto-adaptive", "list-constant", "uls-heuristic", "exit-confidence", "exit2-specdecpp"])
def test_layer_skipping_greedy_equals_autoregressive(any_pair, run_engine, method, params):
    drafted = accepted = 0
    for prompt in PROMPTS:
        expected = greedy_autoregressive(run_engine, any_pair, prompt)
        _, steps, finished = run_engine(prompt=prompt, model=any_pair.target, method=method, params=params,
                                        max_new_tokens=NEW, stop_at_eos=False)
        assert finished.status == "finished", finished.error
        assert finished.token_ids == expected, f"{method} {params} differs from greedy on {prompt!r}"
        for s in steps:
            assert s.target_forwards == 1 and s.draft_forwards == len(s.drafted)
        for s in (s for s in steps if s.gamma):  # a step with nothing left to draft runs no draft at all
            assert s.layers == models.load(any_pair.target).model.config.num_hidden_layers
            assert s.skipped and "0.attn" not in s.skipped
        drafted += sum(len(s.drafted) for s in steps)
        accepted += sum(s.accepted for s in steps)
    assert 0 < accepted, "no draft was ever accepted: the identity proves little"


def test_skipped_layers_caches_are_exact_after_every_step(llama_pair):
    """After each verification every layer's cache equals a fresh full forward over the committed prefix."""
    model = models.load(llama_pair.target).model
    ids = models.load(llama_pair.target).tokenizer(PROMPTS[0])["input_ids"]
    target, cfg = CachedLM(model), DecodeConfig(max_new_tokens=40)
    drafter = SelfDrafter(target, [(1, "attn"), (2, "attn"), (2, "mlp")], cfg)
    committed = list(ids)
    for step in speculate(target, drafter, ids, cfg, schedules.make_schedule(4)):
        committed += step.tokens
        fresh = CachedLM(model)
        fresh.forward(committed[:-1])
        assert [layer.get_seq_length() for layer in target.cache.layers] == [len(committed) - 1] * 3
        for mine, theirs in zip(target.cache.layers, fresh.cache.layers):
            torch.testing.assert_close(mine.keys, theirs.keys, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(mine.values, theirs.values, atol=1e-5, rtol=1e-4)


def test_skipping_changes_the_draft_and_gates_switch_back(llama_pair):
    model = models.load(llama_pair.target).model
    x = torch.tensor([models.load(llama_pair.target).tokenizer(PROMPTS[1])["input_ids"]])
    gates = Gates.of(model)
    assert Gates.of(model) is gates, "gates must never be stacked"
    with torch.inference_mode():
        full = model(x).logits
        with gates.skipping([(1, "attn"), (2, "mlp")]):
            skipped = model(x).logits
        again = model(x).logits
    assert not torch.allclose(full, skipped)
    torch.testing.assert_close(full, again)


def test_skip_lists_and_unified_layer_skipping():
    assert parse_skip_list("3, 5.attn,7.mlp", 8) == [(3, "attn"), (3, "mlp"), (5, "attn"), (7, "mlp")]
    assert unified_skip(12, 6) == [(i, k) for i in (1, 3, 5, 6, 8, 10) for k in ("attn", "mlp")]
    assert unified_skip(3, 1) == [(1, "attn"), (1, "mlp")]
    assert unified_skip(8, 0) == []
    for bad, words in [("x", "cannot read"), ("2.ffn", "cannot read"), ("9", "no sub-layer"),
                       ("0.attn", "layer 0's attention")]:
        with pytest.raises(PlaygroundError, match=words):
            parse_skip_list(bad, 8)
    with pytest.raises(ValueError):
        check_skip([(0, "attn")], 4)


def test_adaptive_threshold_follows_the_acceptance_rate():
    s = schedules.Schedule("adaptive", 8, min_confidence=0.5, target_acceptance=0.8)
    assert s.threshold == 0.5 and s.stop_after([0.9, 0.4]) and not s.stop_after([0.9, 0.6])
    why = s.update(4, 1)  # acceptance 0.25 < 0.8: draft less, more carefully
    assert s.min_confidence > 0.5 and "threshold 0.500 ->" in why and "below" in why
    for _ in range(20):
        s.update(4, 4)
    assert s.acceptance > 0.8 and s.min_confidence < 0.5, "sustained full acceptance lowers the threshold"
    assert schedules.Schedule("constant", 4).threshold is None


def test_steps_record_threshold_and_skip_set(llama_pair, run_engine):
    _, steps, finished = run_engine(prompt=PROMPTS[0], model=llama_pair.target, method="self_speculative",
                                    params={"skip": "1", "min_confidence": 0.3}, max_new_tokens=30)
    assert finished.status == "finished", finished.error
    assert steps[0].threshold == pytest.approx(0.3)
    assert all(s.skipped == ["1.attn", "1.mlp"] and s.layers == 3 for s in steps if s.gamma)
    assert any(s.gamma_reason.startswith("acceptance") for s in steps)


@pytest.mark.parametrize("method,params", [("self_speculative", {"skip": "1,2"}), ("early_exit", {})])
def test_layer_skipping_sampling_follows_the_target(llama_pair, run_engine, first_token_dists, method, params):
    prompt, p, _ = first_token_dists
    tokens = _first_tokens(run_engine, llama_pair, prompt, method, params=params)
    assert_fits(_counts(tokens, p), p, f"{method}, first generated token")


@pytest.mark.parametrize("method,params,words", [
    ("self_speculative", ["skip=banana"], "cannot read skip item"),
    ("self_speculative", ["skip=0.attn"], "layer 0's attention"),
    ("self_speculative", ["skip=searched"], "no skip_set.json"),
    ("early_exit", ["exit_layer=3"], "exit_layer must be between 1 and 2"),
])
def test_bad_skip_parameters_get_clear_errors(llama_pair, run_cli, method, params, words):
    args = ["generate", "--model", llama_pair.target, "--method", method, "--prompt", "x = 1", "--max-new-tokens",
            "4"]
    for p in params:
        args += ["--param", p]
    out = run_cli(*args)
    assert out.returncode != 0
    assert words in out.stderr and "Traceback" not in out.stderr


def test_skip_search_writes_a_reproducible_result(llama_pair, tmp_path):
    from playground.training import skipsearch

    out = tmp_path / "skip.json"
    skipsearch.main(["--model", llama_pair.target, "--trials", "5", "--prompts", "1", "--max-new-tokens", "8",
                     "--finalists", "2", "--final-prompts", "2", "--final-tokens", "8", "--rounds", "1",
                     "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["skip"] and "0.attn" not in result["skip"]
    # the rest coincide
    assert 1 <= len(result["trials"]) <= 5 and set(result["seed_candidates"]) == {"uls_half", "early_exit_quarter"}
    final = result["final_round"]
    assert set(final) >= {"autoregressive", "uls_half", "early_exit_quarter"} and len(final) <= 1 + 2 + 2
    assert result["tokens_per_s"] == max(r["tokens_per_s"] for k, r in final.items() if k != "autoregressive")
    assert result["skip"] == final[result["chosen"]]["skip"]
    assert result["command"].startswith("python -m playground.training.skipsearch")
    assert parse_skip_list(",".join(result["skip"]), 3)
