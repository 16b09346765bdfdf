"""Greedy losslessness: speculative decoding returns the target's own greedy output, token for token.

Over four architectures (Llama, GPT-2, Qwen2, GPT-NeoX) and the shipped tiny-code pair: speculative == autoregressive
for several prompts and gamma values, autoregressive == transformers' `generate`, the stop at end-of-text is the same
everywhere, and the KV cache rollback (`CachedLM.crop`) gives the logits of a fresh cache. The tiny drafts are
accepted roughly 30-50% of the time, so every generation rolls the caches back many times.
"""

from __future__ import annotations

import pytest
import torch
from conftest import CONTEXT, PROMPTS

from playground.engine import Request, prepare
from playground.errors import PlaygroundError
from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET
from playground.methods.autoregressive import autoregressive
from playground.methods.base import DecodeConfig
from playground.methods.speculative import speculative
from playground.models import loading as models
from playground.runtime.lm import CachedLM

NEW = 56
GAMMAS = (1, 4, 8)

_greedy: dict[tuple, list[int]] = {}


def greedy_autoregressive(run_engine, pair, prompt: str, new: int = NEW, runtime: str = "auto") -> list[int]:
    """The target's greedy continuation (no stop at end-of-text), checked step by step, cached per test session."""
    key = (pair.target, prompt, new, runtime)
    if key not in _greedy:
        started, steps, finished = run_engine(prompt=prompt, model=pair.target, method="autoregressive",
                                              max_new_tokens=new, stop_at_eos=False, runtime=runtime)
        assert finished.status == "finished", finished.error
        assert started.draft is None and started.method == "autoregressive"
        assert len(steps) == new and all(len(s.tokens) == 1 for s in steps)
        assert [s.index for s in steps] == list(range(new))
        for s in steps:
            assert s.sources == [TARGET] and s.drafted == [] and s.q == [None]
            assert s.target_forwards == 1 and s.draft_forwards == 0 and s.accepted == 0
            assert 0.0 < s.p[0] <= 1.0
        assert finished.token_ids == [t for s in steps for t in s.tokens]
        assert finished.stats.new_tokens == new == finished.stats.target_forwards
        assert finished.stats.draft_forwards == 0 and finished.stats.acceptance_rate is None
        assert finished.stats.mean_accepted == 1.0
        _greedy[key] = finished.token_ids
    return _greedy[key]


def check_speculative_steps(steps, gamma: int, new: int) -> None:
    """What every speculative step must say about itself (greedy)."""
    produced = 0
    for i, s in enumerate(steps):
        assert s.index == i
        left = new - produced
        assert s.gamma == min(gamma, left - 1), "never draft past the token budget"
        assert len(s.drafted) == s.gamma == len(s.draft_p) == len(s.draft_q) == len(s.drafted_texts)
        assert 0 <= s.accepted <= len(s.drafted)
        assert s.target_forwards == 1, "one target forward verifies the whole draft"
        assert s.draft_forwards == s.gamma
        assert s.tokens[: s.accepted] == s.drafted[: s.accepted]
        assert 1 <= len(s.tokens) == min(s.accepted + 1, left)
        last = TARGET if s.gamma == 0 else BONUS if s.accepted == s.gamma else REPLACEMENT
        assert s.sources == ([ACCEPTED] * s.accepted + [last])[: len(s.tokens)]
        if s.rejected_at is not None:
            # greedy: the target rejects a drafted token only for a different one of its own
            assert s.tokens[s.accepted] != s.drafted[s.accepted]
        assert s.q == (s.draft_q[: s.accepted] + [None])[: len(s.tokens)]
        assert all(0.0 < p <= 1.0 for p in s.p)
        assert len(s.texts) == len(s.tokens)
        produced += len(s.tokens)
    assert produced == new


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("runtime", ["auto", "transformers"])  # auto: lean for Llama, Qwen2 and tiny-code
def test_speculative_greedy_equals_autoregressive(any_pair, run_engine, gamma, runtime):
    accepted = drafted = rejections = 0
    for prompt in PROMPTS:
        expected = greedy_autoregressive(run_engine, any_pair, prompt, runtime=runtime)
        started, steps, finished = run_engine(prompt=prompt, model=any_pair.target, draft=any_pair.draft,
                                              method="speculative", params={"gamma": gamma}, max_new_tokens=NEW,
                                              stop_at_eos=False, runtime=runtime)
        assert finished.status == "finished", finished.error
        assert started.draft == any_pair.draft and started.settings["gamma"] == gamma
        assert finished.token_ids == expected, f"speculative (gamma={gamma}) differs from greedy on {prompt!r}"
        assert [t for s in steps for t in s.tokens] == expected
        check_speculative_steps(steps, gamma, NEW)

        stats = finished.stats
        assert stats.new_tokens == NEW
        assert stats.target_forwards == len(steps)
        assert stats.draft_forwards == sum(s.gamma for s in steps)
        assert stats.mean_accepted == pytest.approx(NEW / len(steps))
        step_accepted = sum(s.accepted for s in steps)
        assert stats.acceptance_rate == pytest.approx(step_accepted / sum(len(s.drafted) for s in steps))
        if step_accepted:
            assert stats.target_forwards < stats.new_tokens
        accepted += step_accepted
        drafted += sum(len(s.drafted) for s in steps)
        rejections += sum(s.rejected_at is not None for s in steps)
    # Both outcomes must occur, or the identity above proves little about acceptance and KV rollback.
    assert 0 < accepted < drafted, f"acceptance {accepted}/{drafted}: the test pair is too good or too bad"
    assert rejections > 0


def test_autoregressive_greedy_matches_transformers_generate(any_pair, run_engine):
    from transformers import GenerationConfig

    loaded = models.load(any_pair.target)
    tok = loaded.tokenizer
    gen_cfg = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=NEW, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id)
    for prompt in PROMPTS:
        ids = tok(prompt)["input_ids"]
        x = torch.tensor([ids])
        with torch.inference_mode():
            out = loaded.model.generate(x, attention_mask=torch.ones_like(x), generation_config=gen_cfg)
        theirs = out[0, len(ids):].tolist()
        # our default: stop after end-of-text, the same rule as generate's eos_token_id
        _, steps, finished = run_engine(prompt=prompt, model=any_pair.target, max_new_tokens=NEW)
        assert finished.token_ids == theirs, f"autoregressive greedy differs from transformers on {prompt!r}"
        assert finished.text == tok.decode(theirs, skip_special_tokens=True)


def test_end_of_text_stops_every_method_at_the_same_token(any_pair, run_engine):
    """Pretend a token from the middle of the greedy output is end-of-text: all decoders stop right after it."""
    from transformers import GenerationConfig

    prompt = PROMPTS[0]
    full = greedy_autoregressive(run_engine, any_pair, prompt)
    eos = full[len(full) // 3]
    stop = full.index(eos)
    expected = full[: stop + 1]
    target, draft = models.load(any_pair.target), models.load(any_pair.draft)
    ids = target.tokenizer(prompt)["input_ids"]
    cfg = DecodeConfig(max_new_tokens=NEW, eos_id=eos)

    ar = [t for s in autoregressive(CachedLM(target.model), None, ids, cfg) for t in s.tokens]
    assert ar == expected
    for gamma in (1, 3, 8):
        steps = list(speculative(CachedLM(target.model), CachedLM(draft.model), ids, cfg, gamma=gamma))
        assert [t for s in steps for t in s.tokens] == expected, f"gamma={gamma}"
        assert steps[-1].tokens[-1] == eos

    x = torch.tensor([ids])
    with torch.inference_mode():
        out = target.model.generate(x, attention_mask=torch.ones_like(x), generation_config=GenerationConfig(
            do_sample=False, max_new_tokens=NEW, eos_token_id=eos, pad_token_id=target.tokenizer.pad_token_id))
    assert out[0, len(ids):].tolist() == expected


@pytest.mark.parametrize("new", [1, 2, 3, 5])
def test_short_budgets(arch_pair, run_engine, new):
    """A budget smaller than gamma: drafts shrink so nothing is drafted past it; a budget of 1 drafts nothing."""
    expected = greedy_autoregressive(run_engine, arch_pair, PROMPTS[1])[:new]
    _, steps, finished = run_engine(prompt=PROMPTS[1], model=arch_pair.target, draft=arch_pair.draft,
                                    method="speculative", params={"gamma": 8}, max_new_tokens=new)
    assert finished.token_ids == expected
    check_speculative_steps(steps, 8, new)
    if new == 1:
        assert len(steps) == 1 and steps[0].drafted == [] and steps[0].sources == [TARGET]
        assert finished.stats.draft_forwards == 0 and finished.stats.acceptance_rate is None


def test_speculative_fills_the_whole_context_without_overrunning(gpt2_pair, run_engine):
    """GPT-2 has learned positions: a single position past the context crashes. Use exactly all of it."""
    tok = models.load(gpt2_pair.target).tokenizer
    prompt = "x = [" + ", ".join(str(i) for i in range(60)) + "]\n"
    n = len(tok(prompt)["input_ids"])
    new = CONTEXT - n
    assert 20 < new < 120, n
    ar = run_engine(prompt=prompt, model=gpt2_pair.target, max_new_tokens=new, stop_at_eos=False)[2]
    assert ar.status == "finished", ar.error
    for gamma in (3, 8):
        _, steps, sp = run_engine(prompt=prompt, model=gpt2_pair.target, draft=gpt2_pair.draft, method="speculative",
                                  params={"gamma": gamma}, max_new_tokens=new, stop_at_eos=False)
        assert sp.status == "finished", sp.error
        assert sp.token_ids == ar.token_ids and len(sp.token_ids) == new
    with pytest.raises(PlaygroundError, match="context"):
        prepare(Request(prompt=prompt, model=gpt2_pair.target, max_new_tokens=new + 1))


def test_cache_crop_gives_the_logits_of_a_fresh_cache(arch_pair):
    """Roll back a cache after a rejected draft, feed other tokens: same logits as if the draft never happened."""
    model = models.load(arch_pair.target).model
    gen = torch.Generator().manual_seed(0)
    prefix, rejected, other = (torch.randint(2, 4096, (n,), generator=gen).tolist() for n in (12, 6, 5))

    lm = CachedLM(model)
    first = lm.forward(prefix)
    assert first.shape == (1, 4096) and lm.length == len(prefix) and lm.forwards == 1
    assert lm.forward(rejected, keep=len(rejected)).shape == (len(rejected), 4096)
    assert lm.length == len(prefix) + len(rejected)
    lm.crop(len(prefix) + 2)
    assert lm.length == len(prefix) + 2
    lm.crop(len(prefix))
    assert lm.length == len(prefix)
    lm.crop(len(prefix) + 5)  # cropping to more than is cached changes nothing
    assert lm.length == len(prefix)
    after = lm.forward(other, keep=len(other))

    fresh = CachedLM(model).forward(prefix + other, keep=len(other))
    torch.testing.assert_close(after, fresh, rtol=1e-4, atol=1e-4)
    assert lm.take_counters()[0] == 3 and lm.take_counters() == (0, 0.0)
