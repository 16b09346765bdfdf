"""Speculative decoding with a draft model (Leviathan et al. 2023, arXiv 2211.17192; Chen et al. 2023).

Each step a drafter proposes up to `gamma` tokens, keeping its distributions q_i; the target scores the last
committed token and all drafted tokens in ONE forward, giving p_1..p_{gamma+1}. Drafted token x_i is accepted with
probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection a replacement is sampled from norm(max(0, p_i - q_i)),
and if every token was accepted a bonus token is sampled from p_{gamma+1}. The output has exactly the target's
distribution. Greedy: accept while argmax p_i == x_i, then append argmax p. Both KV caches are rolled back to the
committed tokens.

`speculate` is the loop every draft-then-verify method shares; a method differs only in its drafter (here a small
model; `prompt_lookup` copies from the context) and its draft-length schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from playground.events import Step
from playground.methods import schedules
from playground.methods.base import (
    DecodeConfig,
    Draft,
    Drafter,
    DraftSchedule,
    Method,
    Param,
    Progress,
    accepted_prefix,
    commit_verified,
    draft_budget,
    step_counters,
)
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import display_probs, probs, sample


class ModelDrafter:
    """Drafts autoregressively with a small causal LM sharing the target's vocabulary."""

    def __init__(self, lm: CachedLM, cfg: DecodeConfig):
        self.lm, self.cfg = lm, cfg

    def propose(self, committed: list[int], gamma: int, gen: torch.Generator | None,
                stop: Callable[[list[float]], bool]) -> Draft:
        draft, feed = Draft(), committed[self.lm.length:]
        greedy = self.cfg.sampling.greedy
        for _ in range(gamma):
            logits = self.lm.forward(feed)[-1]
            if greedy:  # q is one-hot on the argmax: None says so, and greedy verification never reads it
                token, dist = int(logits.argmax()), None
                shown = float(display_probs(logits)[token])
            else:
                dist = probs(logits, self.cfg.sampling)
                token = sample(dist, gen)
                shown = float(dist[token])
            draft.tokens.append(token)
            draft.dists.append(dist)
            draft.shown.append(shown)
            if stop(draft.shown):
                break
            feed = [token]
        return draft

    def rollback(self, length: int) -> None:
        self.lm.crop(length)

    def take_counters(self) -> tuple[int, float]:
        return self.lm.take_counters()


def verify(logits: torch.Tensor, drafted: list[int], q_dists: list, cfg: DecodeConfig, gen) -> tuple[int, int]:
    """Speculative acceptance over the target's logits [gamma+1, vocab]. Returns (accepted count, next token).

    A q of None stands for a deterministic draft: q is one-hot on the drafted token.
    """
    if cfg.sampling.greedy:
        choice = logits.argmax(-1).tolist()
        k = accepted_prefix(drafted, choice)
        return k, choice[k]
    p = probs(logits, cfg.sampling)
    for i, x in enumerate(drafted):
        q = q_dists[i]
        q_x = 1.0 if q is None else float(q[x])
        if float(torch.rand((), generator=gen)) * q_x < float(p[i, x]):
            continue
        if q is None:
            residual = p[i].clone()
            residual[x] = 0.0
        else:
            residual = (p[i] - q).clamp(min=0)
        total = float(residual.sum())
        return i, sample(residual / total if total > 0 else p[i], gen)
    return len(drafted), sample(p[len(drafted)], gen)


def speculate(target: CachedLM, drafter: Drafter, prompt_ids: list[int], cfg: DecodeConfig,
              schedule: DraftSchedule) -> Iterator[Step]:
    """Draft, verify in one target forward, commit, roll back; one Step per verification."""
    run = Progress(list(prompt_ids), cfg.sampling.generator())
    while not run.done:
        committed, n = run.committed, len(run.committed)
        asked = draft_budget(schedule.gamma, run.produced, cfg)
        threshold = schedule.threshold
        draft = drafter.propose(committed, asked, run.gen, schedule.stop_after) if asked > 0 else Draft()
        drafted = draft.tokens
        logits = target.forward(committed[target.length:] + drafted, keep=len(drafted) + 1)
        k, next_token = verify(logits, drafted, draft.dists, cfg, run.gen)
        shown_p = display_probs(logits) if cfg.sampling.greedy else probs(logits, cfg.sampling)
        p_drafted = [float(shown_p[i, x]) for i, x in enumerate(drafted)]
        new, sources, done = commit_verified(drafted[:k], next_token, len(drafted), run.produced, cfg)
        target.crop(n + k)  # keep every committed token but the newest, which is fed next step
        drafter.rollback(n + k)
        why = schedule.update(len(drafted), k)
        yield Step(index=run.index, tokens=new, sources=sources,
                   p=(p_drafted[:k] + [float(shown_p[k, next_token])])[:len(new)],
                   q=(draft.shown[:k] + [None])[:len(new)],
                   drafted=drafted, draft_p=p_drafted, draft_q=draft.shown, accepted=k,
                   gamma=asked if draft.gamma is None else draft.gamma,
                   gamma_reason=why, draft_source=draft.source, threshold=threshold,
                   skipped=draft.skipped, layers=draft.layers, **step_counters(target, drafter))
        run.advance(new, done)


def speculative(target: CachedLM, draft: CachedLM, prompt_ids: list[int], cfg: DecodeConfig, gamma: int = 4,
                **schedule) -> Iterator[Step]:
    return speculate(target, ModelDrafter(draft, cfg), prompt_ids, cfg, schedules.make_schedule(gamma, **schedule))


METHOD = Method(
    name="speculative",
    summary="Draft model proposes gamma tokens, target verifies them in one forward (lossless).",
    decode=speculative,
    params=(Param("gamma", 4, "tokens drafted per step (the most, for adaptive schedules)", min=1,
                  max=schedules.MAX_GAMMA), *schedules.PARAMS),
    needs_draft=True,
)
