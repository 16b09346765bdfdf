"""CopySpec: the rolling-hash index, the span rule, the draft model as fallback, and the target's own greedy output."""

from __future__ import annotations

import json
import random

import pytest
from conftest import PROMPTS
from test_draft_free import REPEAT
from test_lossless import NEW, greedy_autoregressive

from playground.engine import Request, prepare
from playground.errors import PlaygroundError
from playground.methods.copyspec import MODULUS, CopySpec, RollingHashIndex, copy_span
from playground.methods.prompt_lookup import find_continuation
from playground.models import loading as models

# Ends as an earlier line began, token for token (REPEAT's last newline is a token of its own, the earlier one is
# merged with the indentation after it, so a 3-token window of REPEAT's end matches nothing before it).
LIST = "x = [1, 2, 3, 4, 5]\nx = [1, 2,"


def scanned_match(tokens: list[int], width: int) -> int | None:
    """The latest earlier occurrence of the last `width` tokens, by scanning (prompt lookup's own search)."""
    _, source = find_continuation(tokens, width, width, 1)
    return source - width if source >= 0 else None


def direct_hash(window: list[int], index: RollingHashIndex) -> int:
    return sum((t + 1) * pow(index.base, len(window) - 1 - i, index.modulus)
               for i, t in enumerate(window)) % index.modulus


def test_index_finds_the_latest_earlier_occurrence():
    index = RollingHashIndex(3)
    index.extend([1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3])
    assert index.latest_match() == 4  # not 0 (older), not 8 (the last window itself)
    index.append(5)
    assert index.latest_match() is None  # "2 3 5" never came before
    short = RollingHashIndex(3)
    short.extend([4, 4, 4])
    assert short.latest_match() is None  # the only window is the last one
    short.append(4)
    assert short.latest_match() == 0


@pytest.mark.parametrize("modulus", [1, 7, MODULUS])
def test_index_checks_tokens_so_collisions_never_match(modulus):
    """Modulus 1 puts every window in one bucket: lookups must still return the true latest match."""
    rng = random.Random(modulus)
    tokens = [rng.randrange(4) for _ in range(300)]
    for width in (1, 3, 5):
        index = RollingHashIndex(width, modulus=modulus)
        for n, token in enumerate(tokens, 1):
            index.append(token)
            assert index.latest_match() == scanned_match(tokens[:n], width), (width, n)


def test_incremental_index_equals_a_rebuild():
    rng = random.Random(0)
    tokens = [rng.randrange(6) for _ in range(400)]
    grown, position = RollingHashIndex(4), 0
    while position < len(tokens):  # committed in steps of varying size, as verification commits them
        step = rng.randrange(1, 9)
        grown.extend(tokens[position:position + step])
        position += step
        assert grown.latest_match() == scanned_match(tokens[:position], 4)
    rebuilt = RollingHashIndex(4)
    rebuilt.extend(tokens)
    assert grown.starts == rebuilt.starts and grown.hash == rebuilt.hash
    for h, starts in rebuilt.starts.items():
        assert all(direct_hash(tokens[s:s + 4], rebuilt) == h for s in starts)
    assert sorted(s for starts in rebuilt.starts.values() for s in starts) == list(range(len(tokens) - 3))


def test_copy_runs_on_into_its_own_output():
    assert copy_span([5, 6, 7, 8], 1, 2) == [6, 7]
    assert copy_span([5, 6, 7, 8], 2, 5) == [7, 8, 7, 8, 7]  # a repeat 2 tokens back, copied 5 long


def test_span_doubles_after_full_acceptance_and_halves_below_half():
    copier = CopySpec(RollingHashIndex(3), span=8, min_span=2, max_span=16, fallback=None, gamma=4)
    draft = copier.propose([1, 2, 3, 4, 1, 2, 3], 32, None, None)
    assert draft.source == 3 and draft.tokens == [4, 1, 2, 3, 4, 1, 2, 3] and draft.gamma == 8
    assert draft.dists == [None] * 8  # deterministic: q is one-hot on the copied token
    assert copier.update(8, 8) == "all 8 copied tokens accepted: span 8 -> 16" and copier.gamma == 16
    assert copier.update(16, 16) == "" and copier.span == 16  # at max_span
    assert copier.update(16, 8) == "" and copier.span == 16  # half accepted: unchanged
    assert copier.update(16, 7) == "7 of 16 copied tokens accepted: span 16 -> 8"
    for _ in range(3):
        copier.update(8, 0)
    assert copier.span == 2  # never below min_span
    nothing = copier.propose([1, 2, 3, 4, 1, 2, 3, 9], 32, None, None)
    assert nothing.tokens == [] and nothing.source is None and nothing.gamma == 0
    assert copier.update(0, 0) == "" and copier.span == 2  # steps that copied nothing leave the span alone


@pytest.mark.parametrize("fallback", ["draft", "none"])
def test_copyspec_greedy_equals_autoregressive(any_pair, run_engine, fallback):
    copied = modelled = rejected = 0
    reasons = []
    for prompt in (*PROMPTS, REPEAT, LIST):
        expected = greedy_autoregressive(run_engine, any_pair, prompt)
        started, steps, finished = run_engine(
            prompt=prompt, model=any_pair.target, draft=any_pair.draft if fallback == "draft" else None,
            method="copyspec", params={"span": 4, "fallback": fallback}, max_new_tokens=NEW, stop_at_eos=False)
        assert finished.status == "finished", finished.error
        assert finished.token_ids == expected, f"copyspec ({fallback}) differs from greedy on {prompt!r}"
        context = list(started.prompt_ids)
        for s in steps:
            assert s.target_forwards == 1 and len(s.drafted) <= s.gamma
            if s.draft_source is not None:  # copied: the draft is the context from the source on
                assert s.draft_forwards == 0 and s.draft_q == [1.0] * len(s.drafted) and s.drafted
                assert s.drafted == copy_span(context, s.draft_source, len(s.drafted))
                copied += 1
                rejected += s.accepted < len(s.drafted)
            elif s.drafted:
                assert fallback == "draft" and s.draft_forwards == len(s.drafted) == s.gamma
                modelled += 1
            reasons += [s.gamma_reason] if s.gamma_reason else []
            context += s.tokens
        if fallback == "draft":
            assert started.draft == any_pair.draft
    assert copied > 0 and rejected > 0, "no copy was made, or every copy was accepted: the test proves little"
    assert (modelled > 0) == (fallback == "draft")
    assert any("span" in r for r in reasons)


def test_copyspec_loads_a_draft_only_where_there_is_one(llama_pair, wide_vocab_draft):
    assert prepare(Request(prompt="x = 1", model=llama_pair.target, method="copyspec")).draft is None
    prep = prepare(Request(prompt="x = 1", model=llama_pair.target, method="copyspec", draft=llama_pair.draft))
    assert prep.draft.name == llama_pair.draft
    with pytest.raises(PlaygroundError):  # a draft given explicitly is checked like any other
        prepare(Request(prompt="x = 1", model=llama_pair.target, method="copyspec", draft=wide_vocab_draft))
    with pytest.raises(PlaygroundError, match="min_span"):
        prepare(Request(prompt="x = 1", model=llama_pair.target, method="copyspec", params={"span": 1}))


def test_generate_copyspec_on_the_default_model_uses_the_default_draft(shipped_pair, run_cli, db):
    out = run_cli("generate", "--model", shipped_pair.target, "--method", "copyspec", "--prompt", REPEAT,
                  "--max-new-tokens", 24, "--json", "--db", db)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["method"] == "copyspec" and result["draft"] == models.DEFAULT_DRAFT
    assert result["stats"]["new_tokens"] <= 24


def test_methods_lists_copyspec_as_using_a_draft_model(capsys):
    from playground.cli import main
    assert main(["methods"]) == 0
    assert "copyspec (uses a draft model when there is one)" in capsys.readouterr().out
