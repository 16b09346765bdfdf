"""Speculative decoding with a draft model (Leviathan et al. 2023, arXiv 2211.17192; Chen et al. 2023).

Each step the draft proposes `gamma` tokens autoregressively, keeping its distributions q_i; the target scores the
last committed token and all drafted tokens in ONE forward, giving p_1..p_{gamma+1}. Drafted token x_i is accepted
with probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection a replacement is sampled from
norm(max(0, p_i - q_i)), and if every token was accepted a bonus token is sampled from p_{gamma+1}. The output has
exactly the target's distribution. Greedy: accept while argmax p_i == x_i, then append argmax p. Both KV caches are
rolled back to the committed tokens.
"""

from __future__ import annotations

import time
from typing import Iterator

import torch

from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET, Step
from playground.lm import CachedLM
from playground.methods.base import DecodeConfig, Method, Param, clip_to_budget
from playground.sampling import display_probs, probs, sample


def draft_tokens(draft: CachedLM, feed: list[int], gamma: int, cfg: DecodeConfig, gen):
    """Draft `gamma` tokens. Returns them, their distributions q_i [gamma, vocab], and q_i(x_i) as shown."""
    tokens, dists, shown = [], [], []
    for _ in range(gamma):
        logits = draft.forward(feed)[-1]
        dist = probs(logits, cfg.sampling)
        token = int(logits.argmax()) if cfg.sampling.greedy else sample(dist, gen)
        tokens.append(token)
        dists.append(dist)
        shown.append(float((display_probs(logits) if cfg.sampling.greedy else dist)[token]))
        feed = [token]
    return tokens, dists, shown


def verify(logits: torch.Tensor, drafted: list[int], q_dists: list, cfg: DecodeConfig, gen) -> tuple[int, int]:
    """Speculative acceptance over the target's logits [gamma+1, vocab]. Returns (accepted count, next token)."""
    if cfg.sampling.greedy:
        target_choice = logits.argmax(-1).tolist()
        k = 0
        while k < len(drafted) and drafted[k] == target_choice[k]:
            k += 1
        return k, target_choice[k]
    p = probs(logits, cfg.sampling)
    for i, x in enumerate(drafted):
        if float(torch.rand((), generator=gen)) * float(q_dists[i][x]) < float(p[i, x]):
            continue
        residual = (p[i] - q_dists[i]).clamp(min=0)
        total = float(residual.sum())
        return i, sample(residual / total if total > 0 else p[i], gen)
    return len(drafted), sample(p[len(drafted)], gen)


def speculative(target: CachedLM, draft: CachedLM, prompt_ids: list[int], cfg: DecodeConfig,
                gamma: int = 4) -> Iterator[Step]:
    gen = cfg.sampling.generator()
    committed, produced, index, done = list(prompt_ids), 0, 0, False
    while not done:
        n = len(committed)
        step_gamma = min(gamma, cfg.max_new_tokens - produced - 1)  # never draft past the token budget
        drafted, q_dists, q_shown = draft_tokens(draft, committed[draft.length:], step_gamma, cfg, gen)
        logits = target.forward(committed[target.length:] + drafted, keep=step_gamma + 1)
        start = time.perf_counter()
        k, next_token = verify(logits, drafted, q_dists, cfg, gen)
        shown_p = display_probs(logits) if cfg.sampling.greedy else probs(logits, cfg.sampling)
        p_drafted = [float(shown_p[i, x]) for i, x in enumerate(drafted)]
        new, done = clip_to_budget(drafted[:k] + [next_token], produced, cfg)
        committed += new
        target.crop(n + k)  # keep every committed token but the newest, which is fed next step
        draft.crop(n + k)
        last = TARGET if step_gamma == 0 else BONUS if k == step_gamma else REPLACEMENT
        sources = [ACCEPTED] * k + [last]
        d_forwards, draft_s = draft.take_counters()
        t_forwards, target_s = target.take_counters()
        yield Step(index=index, tokens=new, sources=sources[:len(new)],
                   p=(p_drafted[:k] + [float(shown_p[k, next_token])])[:len(new)],
                   q=(q_shown[:k] + [None])[:len(new)],
                   drafted=drafted, draft_p=p_drafted, draft_q=q_shown, accepted=k, gamma=step_gamma,
                   target_forwards=t_forwards, draft_forwards=d_forwards, draft_s=draft_s, target_s=target_s,
                   other_s=time.perf_counter() - start)
        produced, index = produced + len(new), index + 1


METHOD = Method(
    name="speculative",
    summary="Draft model proposes gamma tokens, target verifies them in one forward (lossless).",
    decode=speculative,
    params=(Param("gamma", 4, "tokens drafted per step", min=1, max=32),),
    needs_draft=True,
)
