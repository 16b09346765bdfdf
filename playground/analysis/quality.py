"""Quality of an output where it may differ from the reference decoding (diffusion strategies, lossy settings).

- Generative perplexity: how likely the shipped autoregressive `tiny-code` finds the output, given the prompt
  (the usual judge of diffusion LM samples: MDLM, LLaDA). Lower is better; it says nothing of correctness.
- Agreement: the share of positions where two outputs hold the same token (1.0: identical).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from playground.models import loading as models

JUDGE = models.DEFAULT_MODEL


def generative_perplexity(prompt_ids: list[int], output_ids: list[int], judge: str = JUDGE) -> float | None:
    """exp of the judge's mean negative log-likelihood of the output's tokens given the prompt; the end-of-text
    and padding tokens are left out. None when the output has no other token."""
    total, count = negative_log_likelihood(prompt_ids, output_ids, judge)
    return math.exp(total / count) if count else None


def pooled_perplexity(judged: list[tuple[float, int]]) -> float | None:
    """The perplexity of several outputs together: exp(all their NLL / all their tokens). Unlike a mean of
    per-output perplexities, one short odd output cannot dominate it."""
    total, count = sum(t for t, _ in judged), sum(c for _, c in judged)
    return math.exp(total / count) if count else None


@torch.inference_mode()
def negative_log_likelihood(prompt_ids: list[int], output_ids: list[int], judge: str = JUDGE) -> tuple[float, int]:
    """The judge's summed negative log-likelihood (nats) of the output's tokens given the prompt, and how many
    tokens that is (end-of-text and padding left out)."""
    lm = models.load(judge)
    special = set(lm.tokenizer.all_special_ids)
    ids = list(prompt_ids) + list(output_ids)
    limit = lm.max_positions or len(ids)
    if len(ids) > limit:  # keep the output whole, cut the prompt's start
        ids = ids[len(ids) - limit:]
    start = len(ids) - len(output_ids)
    if start < 1 or not output_ids:
        return 0.0, 0
    logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0, start - 1:-1].float().cpu()
    nll = F.cross_entropy(logits, torch.tensor(ids[start:]), reduction="none")
    keep = torch.tensor([t not in special for t in ids[start:]])
    return float(nll[keep].sum()), int(keep.sum())


def agreement(output: list[int], reference: list[int]) -> float:
    """Share of positions (over the longer of the two) where both hold the same token."""
    n = max(len(output), len(reference))
    if n == 0:
        return 1.0
    return sum(a == b for a, b in zip(output, reference)) / n
