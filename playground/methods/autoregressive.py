"""Autoregressive decoding: one target forward per token, with a KV cache. The baseline every method is timed against.

Arguments: the target (a `CachedLM`), the prompt ids and the shared `DecodeConfig` (greedy, or temperature with
top-k / top-p, seeded). Yields one `Step` per token.
"""

from __future__ import annotations

from collections.abc import Iterator

from playground.events import TARGET, Step
from playground.methods.base import DecodeConfig, Method, clip_to_budget
from playground.runtime.lm import CachedLM
from playground.runtime.sampling import display_probs, probs, sample


def decode_one_token(logits, cfg: DecodeConfig, gen) -> tuple[int, float]:
    """Pick the next token from one row of logits; return it with the probability the views show for it."""
    if cfg.sampling.greedy:
        token = int(logits.argmax())
        return token, float(display_probs(logits)[token])
    dist = probs(logits, cfg.sampling)
    token = sample(dist, gen)
    return token, float(dist[token])


def autoregressive(target: CachedLM, draft, prompt_ids: list[int], cfg: DecodeConfig) -> Iterator[Step]:
    gen = cfg.sampling.generator()
    feed, produced, index, done = list(prompt_ids), 0, 0, False
    while not done:
        logits = target.forward(feed)[-1]  # the first call is the prefill of the whole prompt
        token, p = decode_one_token(logits, cfg, gen)
        committed, done = clip_to_budget([token], produced, cfg)
        forwards, target_s = target.take_counters()
        yield Step(index=index, tokens=committed, sources=[TARGET], p=[p], q=[None],
                   target_forwards=forwards, target_s=target_s)
        feed, produced, index = [token], produced + 1, index + 1


METHOD = Method(
    name="autoregressive",
    summary="One target forward per token (KV cache). The baseline.",
    decode=autoregressive,
    kinds=("causal", "seq2seq"),  # an encoder-decoder's first forward encodes the prompt (lm.CachedSeq2Seq)
)
