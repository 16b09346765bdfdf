"""Sampling settings and the distribution every method samples from.

All methods turn logits into a distribution with `probs`, so "the target's distribution" means the same thing for
autoregressive sampling and for speculative sampling: softmax(logits / temperature) restricted to top-k and top-p.
Temperature 0 means greedy: the distribution is one-hot on the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sampling:
    temperature: float = 0.0   # 0 = greedy
    top_k: int = 0             # 0 = off
    top_p: float = 1.0         # 1 = off
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


def probs(logits: torch.Tensor, s: Sampling) -> torch.Tensor:
    """Row-wise sampling distribution (float32) for logits of shape [..., vocab]."""
    logits = logits.float()
    if s.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).float()
    logits = logits / s.temperature
    if s.top_k and s.top_k < logits.size(-1):
        kth = torch.topk(logits, s.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum - sorted_logits.softmax(-1) >= s.top_p  # keep the smallest prefix reaching top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(-1)


def sample(dist: torch.Tensor, gen: torch.Generator) -> int:
    return int(torch.multinomial(dist, 1, generator=gen))


def display_probs(logits: torch.Tensor) -> torch.Tensor:
    """What the views show as 'the model's probability': the plain softmax, also under greedy decoding."""
    return logits.float().softmax(-1)
