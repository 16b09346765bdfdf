"""Sampling: the target distribution (`sampling.probs`), and that speculative sampling preserves it exactly.

The statistical tests use a chi-square goodness-of-fit test at significance 0.001 with fixed seeds, so they are
deterministic; each also checks, with the same test, that a wrong answer (the draft's distribution) would be caught.
"""

from __future__ import annotations

import pytest
import torch
from conftest import PROMPTS

from playground.methods import METHODS
from playground.methods.base import DecodeConfig
from playground.methods.prompt_lookup import find_continuation
from playground.methods.speculative import verify
from playground.models import loading as models
from playground.runtime.sampling import Sampling, probs, sample

# Upper 0.001 quantiles of the chi-square distribution, by degrees of freedom (no scipy needed).
CHI2_CRIT_001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322, 8: 26.124,
                 9: 27.877, 10: 29.588}


def chi_square(counts: torch.Tensor, expected_probs: torch.Tensor) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of `counts` against `expected_probs`.

    Cells the expected distribution rules out must be empty (asserted): one such sample is already a failure.
    """
    counts, expected_probs = counts.double(), expected_probs.double()
    impossible = expected_probs <= 0
    assert counts[impossible].sum() == 0, f"sampled tokens of zero probability: {counts.tolist()}"
    n = counts.sum()
    expected = n * expected_probs[~impossible]
    stat = float(((counts[~impossible] - expected) ** 2 / expected).sum())
    return stat, int((~impossible).sum()) - 1


def assert_fits(counts: torch.Tensor, expected_probs: torch.Tensor, what: str) -> None:
    stat, df = chi_square(counts, expected_probs)
    assert stat < CHI2_CRIT_001[df], (f"{what}: chi-square {stat:.1f} >= {CHI2_CRIT_001[df]} (df {df}); "
                                      f"counts {counts.tolist()}, expected {expected_probs.tolist()}")


def assert_rejected(counts: torch.Tensor, wrong_probs: torch.Tensor) -> None:
    """The test has power: the same counts do not fit a different distribution."""
    wrong_probs = wrong_probs.double()
    if counts.double()[wrong_probs <= 0].sum() > 0:
        return  # samples where the wrong distribution has none: rejected outright
    stat, df = chi_square(counts, wrong_probs)
    assert stat > CHI2_CRIT_001[df], "the chi-square test cannot tell the target from the draft here"


# ------------------------------------------------------------ sampling.probs


def test_greedy_is_one_hot_on_the_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9], [3.0, 0.0, 0.0, 2.0]])
    for s in (Sampling(temperature=0.0), Sampling(temperature=0.0, top_k=1, top_p=0.3)):
        dist = probs(logits, s)
        assert torch.equal(dist, torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
        assert dist.dtype == torch.float32


def test_temperature_scales_logits():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    for t in (0.3, 1.0, 2.5):
        torch.testing.assert_close(probs(logits, Sampling(temperature=t)), (logits / t).softmax(-1))
    # half precision logits come out as float32 distributions
    assert probs(logits.half(), Sampling(temperature=1.0)).dtype == torch.float32


def test_top_k_keeps_exactly_the_k_most_likely_and_renormalises():
    logits = torch.randn(4, 40, generator=torch.Generator().manual_seed(1))
    full = logits.softmax(-1)
    for k in (1, 3, 10):
        dist = probs(logits, Sampling(temperature=1.0, top_k=k))
        top = logits.topk(k, dim=-1).indices
        for row in range(logits.size(0)):
            support = set(dist[row].nonzero().flatten().tolist())
            assert support == set(top[row].tolist())
            kept = full[row, top[row]]
            torch.testing.assert_close(dist[row, top[row]], kept / kept.sum())
        torch.testing.assert_close(dist.sum(-1), torch.ones(4))
    # k at or above the vocabulary size is no restriction
    torch.testing.assert_close(probs(logits, Sampling(temperature=1.0, top_k=40)), full)
    torch.testing.assert_close(probs(logits, Sampling(temperature=1.0, top_k=1000)), full)


@pytest.mark.parametrize("top_p,kept", [(0.4, 1), (0.75, 2), (0.9, 3), (0.97, 4), (1.0, 4)])
def test_top_p_keeps_the_smallest_prefix_reaching_p(top_p, kept):
    base = torch.tensor([0.5, 0.3, 0.15, 0.05])
    # each row is the same distribution in another order: the mask must follow the tokens, not the positions
    orders = [torch.tensor(o) for o in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2])]
    logits = torch.stack([base[o].log() for o in orders])
    dist = probs(logits, Sampling(temperature=1.0, top_p=top_p))
    for row, order in enumerate(orders):
        # token j of row holds base[order[j]]; the kept ones are the `kept` largest
        keep = order < kept
        assert torch.equal(dist[row] > 0, keep), (row, dist[row])
        mass = base[:kept].sum()
        torch.testing.assert_close(dist[row][keep], base[order][keep] / mass)
    torch.testing.assert_close(dist.sum(-1), torch.ones(4))


def test_temperature_then_top_k_then_top_p():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0]).log_softmax(-1)
    s = Sampling(temperature=2.0, top_k=4, top_p=0.6)
    scaled = (logits / 2.0)[:4].softmax(-1)  # top-4 after temperature
    cum = scaled.cumsum(-1)
    n_keep = int((cum - scaled < 0.6).sum())
    expected = torch.zeros(5)
    expected[:n_keep] = scaled[:n_keep] / scaled[:n_keep].sum()
    torch.testing.assert_close(probs(logits, s), expected)
    assert 1 < n_keep < 4  # the case is not degenerate


def test_sample_is_reproducible_and_follows_the_distribution():
    dist = torch.tensor([0.1, 0.0, 0.6, 0.3])
    draws = [sample(dist, Sampling(seed=5).generator()) for _ in range(3)]
    assert len(set(draws)) == 1
    gen = Sampling(seed=1).generator()
    counts = torch.bincount(torch.tensor([sample(dist, gen) for _ in range(3000)]), minlength=4)
    assert_fits(counts, dist, "sample()")


# ------------------------------------------------------------ verify(): the acceptance rule in isolation


def test_greedy_verify_accepts_the_matching_prefix_then_takes_the_target_argmax():
    cfg = DecodeConfig(sampling=Sampling(temperature=0.0))
    logits = torch.full((4, 10), -5.0)
    for row, best in enumerate([3, 7, 1, 9]):
        logits[row, best] = 5.0
    gen = torch.Generator()
    assert verify(logits, [3, 7, 1], [None] * 3, cfg, gen) == (3, 9)  # all accepted: bonus from the last row
    assert verify(logits, [3, 7, 2], [None] * 3, cfg, gen) == (2, 1)  # rejected at 2: the target's own token
    assert verify(logits, [4, 7, 1], [None] * 3, cfg, gen) == (0, 3)
    assert verify(logits[:1], [], [], cfg, gen) == (0, 3)              # nothing drafted: one target token


VOCAB = 6
# Draft distributions, one per drafted position. They disagree with the target on purpose: q1 ignores tokens the
# target likes, q2 puts mass on tokens top-k / top-p remove from the target, q3 is almost one-hot.
Q = torch.tensor([
    [0.45, 0.30, 0.25, 0.00, 0.00, 0.00],
    [0.05, 0.05, 0.10, 0.10, 0.30, 0.40],
    [0.90, 0.02, 0.02, 0.02, 0.02, 0.02],
])
SAMPLINGS = {
    "temperature-1": Sampling(temperature=1.0),
    "temperature-0.7-top-k-4": Sampling(temperature=0.7, top_k=4),
    "temperature-1.3-top-p-0.8": Sampling(temperature=1.3, top_p=0.8),
}


@pytest.mark.parametrize("gamma", [1, 2, 3])
@pytest.mark.parametrize("sampling", list(SAMPLINGS), ids=list(SAMPLINGS))
def test_speculative_sampling_preserves_the_target_distribution(sampling, gamma):
    """A context-free toy target p_1..p_{gamma+1} and draft q_1..q_gamma: each committed position j is p_j."""
    s = SAMPLINGS[sampling]
    cfg = DecodeConfig(sampling=s)
    logits = torch.randn(gamma + 1, VOCAB, generator=torch.Generator().manual_seed(10 + gamma)) * 1.5
    p = probs(logits, s)
    q = [Q[i] for i in range(gamma)]  # used as given: the draft need not share the target's top-k / top-p
    trials = 4000
    draw = torch.Generator().manual_seed(100 + gamma)
    drafted = torch.stack([torch.multinomial(q[i], trials, replacement=True, generator=draw)
                           for i in range(gamma)], dim=1).tolist()
    gen = torch.Generator().manual_seed(7)
    counts = torch.zeros(gamma + 1, VOCAB, dtype=torch.long)
    accepted_counts = torch.zeros(gamma + 1, dtype=torch.long)
    for x in drafted:
        k, nxt = verify(logits, x, q, cfg, gen)
        assert 0 <= k <= gamma
        committed = x[:k] + [nxt]
        accepted_counts[k] += 1
        for j, token in enumerate(committed):
            counts[j, token] += 1
    # every number of accepted tokens happens, so every branch of the rule was exercised
    assert (accepted_counts > 0).all(), accepted_counts.tolist()
    for j in range(gamma + 1):
        if counts[j].sum() >= 200:
            assert_fits(counts[j], p[j], f"committed position {j + 1} ({sampling}, gamma {gamma})")
    assert_rejected(counts[0], q[0])


@pytest.mark.parametrize("sampling", list(SAMPLINGS), ids=list(SAMPLINGS))
def test_deterministic_drafts_keep_the_target_distribution(sampling):
    """Copied drafts (prompt lookup) have q one-hot on the drafted token: the first committed token is still p_1."""
    s = SAMPLINGS[sampling]
    cfg = DecodeConfig(sampling=s)
    logits = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(3)) * 1.5
    p = probs(logits, s)
    gen = torch.Generator().manual_seed(11)
    counts = torch.zeros(VOCAB, dtype=torch.long)
    accepted = 0
    for _ in range(4000):
        k, nxt = verify(logits, [1, 4], [None, None], cfg, gen)  # always the same copied span
        counts[([1, 4][:k] + [nxt])[0]] += 1
        accepted += k > 0
    assert 0 < accepted < 4000
    assert_fits(counts, p[0], f"first committed token after a copied draft ({sampling})")


# ------------------------------------------------------------ the whole engine, end to end

E2E_SEEDS = 300
E2E_SAMPLING = dict(temperature=1.0, top_k=5)  # 5 candidate tokens: countable with a few hundred runs


@pytest.fixture(scope="module")
def first_token_dists(llama_pair):
    """The exact first-token distributions of the target (p) and of the draft (q) under E2E_SAMPLING."""
    prompt = PROMPTS[2]
    target, draft = models.load(llama_pair.target), models.load(llama_pair.draft)
    ids = torch.tensor([target.tokenizer(prompt)["input_ids"]])
    s = Sampling(**E2E_SAMPLING)
    with torch.inference_mode():
        p = probs(target.model(ids).logits[0, -1], s)
        q = probs(draft.model(ids).logits[0, -1], s)
    assert 0.5 * float((p - q).abs().sum()) > 0.2, "draft too close to the target for a meaningful test"
    return prompt, p, q


@pytest.fixture(scope="module")
def copied_first_token_dists(llama_pair):
    """A prompt that ends as it began (base, one bridging token, a newline, base again), so copying drafts the first
    token: the bridge that follows base's first copy. Of the bridges base's own top-k suggest, the one whose copy the
    target finds least certain either way is taken, so copies are both accepted and rejected. Returns the prompt,
    the target's p and, as the wrong answer, q one-hot on the copied token (a copy that is always kept)."""
    target = models.load(llama_pair.target)
    tok, s = target.tokenizer, Sampling(**E2E_SAMPLING)

    def last_dist(ids: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            return probs(target.model(torch.tensor([ids])).logits[0, -1], s)

    best = None
    for base in PROMPTS:
        for bridge in last_dist(tok(base)["input_ids"]).nonzero().flatten().tolist():
            prompt = base + tok.decode([bridge]) + "\n" + base
            ids = tok(prompt)["input_ids"]
            (copied,), _ = find_continuation(ids, 3, 3, 1)  # what a 3-token window copies, as copyspec does
            p = last_dist(ids)
            margin = min(float(p[copied]), 1 - float(p[copied]))
            if best is None or margin > best[0]:
                best = margin, prompt, p, torch.nn.functional.one_hot(torch.tensor(copied), p.numel())
    assert best[0] > 0.1, "no prompt whose copied token the target finds uncertain"
    return best[1:]


def _first_tokens(run_engine, pair, prompt, method, **extra):
    tokens = []
    for seed in range(E2E_SEEDS):
        *_, finished = run_engine(prompt=prompt, model=pair.target, method=method, max_new_tokens=3, seed=seed,
                                  stop_at_eos=False, **E2E_SAMPLING, **extra)
        assert finished.status == "finished", finished.error
        tokens.append(finished.token_ids[0])
    return tokens


def _counts(tokens: list[int], support: torch.Tensor) -> torch.Tensor:
    return torch.bincount(torch.tensor(tokens), minlength=support.numel())


DRAFTED_FIRST = {  # method: (fixture with the prompt, p and the wrong answer q; extra request fields)
    "speculative": ("first_token_dists", {"params": {"gamma": 2}}),
    "prompt_lookup": ("copied_first_token_dists", {}),
    "copyspec": ("copied_first_token_dists", {}),  # no draft model: the first token comes from a copy
}


@pytest.mark.parametrize("method", list(DRAFTED_FIRST))
def test_engine_drafted_first_token_follows_the_target(llama_pair, run_engine, request, method):
    """Drafted by a model or copied from the context, the first generated token is distributed as p, not as q."""
    fixture, extra = DRAFTED_FIRST[method]
    prompt, p, q = request.getfixturevalue(fixture)
    draft = llama_pair.draft if METHODS[method].needs_draft else None
    _, steps, _ = run_engine(prompt=prompt, model=llama_pair.target, draft=draft, method=method, max_new_tokens=3,
                             **E2E_SAMPLING, **extra)
    assert steps[0].drafted and (steps[0].draft_source is not None) == (fixture == "copied_first_token_dists")
    counts = _counts(_first_tokens(run_engine, llama_pair, prompt, method, draft=draft, **extra), p)
    assert_fits(counts, p, f"{method}, first generated token")
    assert_rejected(counts, q)


def test_engine_autoregressive_first_token_follows_the_target(llama_pair, run_engine, first_token_dists):
    prompt, p, q = first_token_dists
    counts = _counts(_first_tokens(run_engine, llama_pair, prompt, "autoregressive"), p)
    assert_fits(counts, p, "autoregressive, first generated token")
    assert_rejected(counts, q)


@pytest.mark.parametrize("method", ["autoregressive", "speculative"])
def test_same_seed_same_output(llama_pair, run_engine, method):
    extra = {"draft": llama_pair.draft} if method == "speculative" else {}
    outputs = {}
    for seed in (0, 0, 1, 2, 3):
        *_, finished = run_engine(prompt=PROMPTS[0], model=llama_pair.target, method=method, max_new_tokens=12,
                                  temperature=1.0, top_p=0.95, seed=seed, stop_at_eos=False, **extra)
        assert len(finished.token_ids) == 12
        outputs.setdefault(seed, []).append(finished.token_ids)
    assert outputs[0][0] == outputs[0][1], "same seed, different output"
    assert len({tuple(v[0]) for v in outputs.values()}) > 1, "the seed does not change anything"


def test_sampled_speculative_reports_acceptance_and_sampled_probabilities(llama_pair, run_engine):
    _, steps, finished = run_engine(prompt=PROMPTS[1], model=llama_pair.target, draft=llama_pair.draft,
                                    method="speculative", max_new_tokens=40, temperature=1.0, top_k=5, seed=3,
                                    stop_at_eos=False, params={"gamma": 3})
    assert len(finished.token_ids) == 40
    rate = finished.stats.acceptance_rate
    assert rate is not None and 0.0 < rate < 1.0
    for s in steps:
        # sampled: p and q are those of the sampling distributions; an accepted token has positive p and q
        assert all(0.0 < p <= 1.0 for p in s.p)
        assert all(0.0 < q <= 1.0 for q in s.draft_q)
        assert s.tokens[: s.accepted] == s.drafted[: s.accepted]
