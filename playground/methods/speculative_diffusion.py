"""Speculative decoding with a diffusion drafter: a masked-diffusion model drafts a whole block in a few parallel
forwards, the autoregressive target verifies it in one (issue 23; the causal-LM analogue of `gad`, and of the
diffusion-drafts-for-AR idea of e.g. SpecDiff, Christopher et al. 2024, arXiv 2408.05636).

Each step the committed text (prompt and output so far) is followed by `block` mask tokens; the diffusion model
(`tiny-code-diffusion`, or any masked-diffusion model sharing the target's tokenizer) unmasks them with a fast
strategy of the `diffusion` method: `threshold` (Fast-dLLM: every mask at least `threshold` confident per forward)
or `fixed_steps` (`steps` forwards for the block; 1 = the whole block from one forward). The target scores the last
committed token and the drafted block in ONE forward and keeps the draft up to its first disagreement, plus its own
token there: `speculative.speculate`'s loop, so greedy output is identical to the target's greedy decoding.

The draft is always decoded greedily, so it is a deterministic function of the context: its q is one-hot on the
drafted token, and verification accepts x_i with probability p_i(x_i), else samples from p_i without x_i (the
q = None case of `speculative.verify`): exact in the target's distribution when sampling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from playground.errors import PlaygroundError
from playground.methods import diffusion, schedules
from playground.methods.base import DecodeConfig, Draft, Method, Param
from playground.methods.speculative import speculate
from playground.runtime.canvas import CACHES, Canvas, Denoiser, check_cache
from playground.runtime.sampling import Sampling

STRATEGIES = ("threshold", "fixed_steps")


class DiffusionDrafter:
    """Drafts the next `gamma` tokens as one block of a masked-diffusion canvas after the committed text."""

    def __init__(self, model, cfg: DecodeConfig, strategy: str, steps: int, threshold: float, cache: str):
        if cfg.mask_id is None:
            raise PlaygroundError("the tokenizer has no mask token: a diffusion draft needs one")
        check_cache(model, cache)
        self.cfg = DecodeConfig(max_new_tokens=cfg.max_new_tokens, eos_id=cfg.eos_id, mask_id=cfg.mask_id)
        self.den = Denoiser(model, cache, Sampling())  # greedy: the draft is deterministic (q one-hot)
        self.strategy, self.steps, self.threshold = strategy, steps, threshold
        self.forwards, self.seconds = 0, 0.0

    def propose(self, committed: list[int], gamma: int, gen: torch.Generator | None,
                stop: Callable[[list[float]], bool]) -> Draft:
        canvas = Canvas.new(committed, gamma, self.cfg.mask_id, gamma)
        for step in diffusion.static_decode(self.den, canvas, self.cfg, self.strategy, self.steps, self.threshold,
                                            0.0, "cosine", 0.0, 0.0):
            self.forwards += step.target_forwards
            self.seconds += step.target_s
        tokens = [t for t, at in zip(canvas.guess, canvas.committed_at) if at >= 0]
        tokens = tokens[:next((i for i, at in enumerate(canvas.committed_at) if at < 0), len(tokens))]
        if self.cfg.eos_id in tokens:  # nothing after an end-of-text is worth verifying
            tokens = tokens[:tokens.index(self.cfg.eos_id) + 1]
        return Draft(tokens=tokens, dists=[None] * len(tokens), shown=canvas.conf[:len(tokens)])

    def rollback(self, length: int) -> None:
        """Nothing to forget: every draft reads the committed text afresh (a bidirectional model has no exact
        cache to keep across steps)."""

    def take_counters(self) -> tuple[int, float]:
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters


def speculative_diffusion(target, draft, prompt_ids: list[int], cfg: DecodeConfig, block: int, strategy: str,
                          steps: int, threshold: float, cache: str):
    """One Step per verification: `drafted` is the diffusion model's block, `accepted` the prefix the target kept.

    Args: block: tokens drafted per step; strategy: how the draft unmasks its block (threshold or fixed_steps);
    steps: fixed_steps' forwards per block (0: one token per forward); threshold: the threshold strategy's
    confidence; cache: the draft's KV reuse within a block (none, prefix, dual)."""
    drafter = DiffusionDrafter(draft.model, cfg, strategy, steps, threshold, cache)
    return speculate(target, drafter, prompt_ids, cfg, schedules.make_schedule(block))


METHOD = Method(
    name="speculative_diffusion",
    summary="A diffusion model drafts a whole block in parallel, the target verifies it in one forward and keeps "
            "it up to the first disagreement plus its own token (lossless).",
    decode=speculative_diffusion,
    params=(
        Param("block", 6, "tokens the diffusion model drafts per step", min=1, max=schedules.MAX_GAMMA),
        Param("strategy", "fixed_steps", "how the draft unmasks its block", choices=STRATEGIES),
        Param("steps", 1, "fixed_steps: draft forwards per block (0 = one token per forward)", min=0, max=64),
        Param("threshold", 0.9, "threshold: the draft commits every mask at least this confident", min=0.0,
              max=1.0),
        Param("cache", "prefix", "the draft's KV reuse inside a block (Fast-dLLM)", choices=CACHES),
    ),
    needs_draft=True,
    draft_kinds=("masked",),
)
