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

import time
from collections.abc import Callable

import torch
from transformers import DynamicCache

from playground.errors import PlaygroundError
from playground.methods import diffusion, schedules
from playground.methods.base import DecodeConfig, Draft, Method, Param
from playground.methods.speculative import speculate
from playground.runtime.canvas import Denoiser, check_cache
from playground.runtime.lean_masked import LeanMaskedLM, StaticKV
from playground.runtime.sampling import Sampling

STRATEGIES = ("threshold", "fixed_steps")


class DiffusionDrafter:
    """Drafts the next `gamma` tokens as one block of masks after the committed text, unmasked by the diffusion
    model. With cache=prefix the committed text's keys and values are kept from step to step (Fast-dLLM's prefix
    cache, carried across steps: approximate, as the model is bidirectional, but only the draft is approximate:
    verification keeps the output exact), so a draft forward reads only the newly committed tokens and the block;
    with cache=none every draft forward reads the whole text."""

    def __init__(self, model, cfg: DecodeConfig, strategy: str, steps: int, threshold: float, cache: str):
        if cfg.mask_id is None:
            raise PlaygroundError("the tokenizer has no mask token: a diffusion draft needs one")
        check_cache(model, cache)
        self.model, self.mask_id, self.eos_id, self.cache = model, cfg.mask_id, cfg.eos_id, cache
        self.den = Denoiser(model, "none", Sampling())  # greedy: the draft is deterministic (q one-hot)
        self.strategy, self.steps, self.threshold = strategy, steps, threshold
        self.kv: list[tuple[torch.Tensor, torch.Tensor]] = []  # the committed text's keys and values, [:kept]
        self.static: StaticKV | None = None  # on the lean runtime, the same in one preallocated cache
        self.kept = 0
        self.forwards, self.seconds = 0, 0.0

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, start: int, keep: int | None, first: int) -> torch.Tensor:
        """Logits for positions `first` .. len(ids) - 1 - shift, feeding ids[start:] after the kept keys and values
        of ids[:start]; with `keep`, the keys and values of ids[:keep] are kept for the next step."""
        began = time.perf_counter()
        device = next(self.model.parameters()).device
        if isinstance(self.model, LeanMaskedLM):  # the lean runtime: one preallocated cache, rows written in place
            self.static = self.static or StaticKV(self.model.net)
            cache, self.static.length = self.static, start
        else:
            cache = DynamicCache()
            for i, (k, v) in enumerate(self.kv):
                cache.update(k[:, :, :start], v[:, :, :start], i)
        fed = ids[start:].to(device)[None]
        positions = torch.arange(start, len(ids), device=device)[None]
        logits = self.model(input_ids=fed, position_ids=positions, cache=cache).logits[0]
        if keep is not None and self.cache == "prefix":
            if cache is not self.static:
                self.kv = [(layer.keys[:, :, :keep], layer.values[:, :, :keep]) for layer in cache.layers]
            self.kept = keep
        logits = logits[first - start:len(ids) - start - self.den.shift].float().cpu()
        self.forwards += 1
        self.seconds += time.perf_counter() - began
        return logits

    def propose(self, committed: list[int], gamma: int, gen: torch.Generator | None,
                stop: Callable[[list[float]], bool]) -> Draft:
        n, shift = len(committed), self.den.shift
        ids = torch.tensor(committed + [self.mask_id] * gamma, dtype=torch.long)
        start = min(self.kept, n - shift) if self.cache == "prefix" else 0
        logits = self.forward(ids, start, n, n - shift)
        done, conf = [False] * gamma, [0.0] * gamma
        budget = self.steps or gamma
        for k in range(gamma):
            pred = self.den.read(logits[None], 0)
            masked = [i for i in range(gamma) if not done[i]]
            if self.strategy == "threshold":
                chosen = diffusion.commits_threshold(masked, pred, self.threshold, 0.0)
            else:
                chosen = diffusion.commits_fixed(masked, pred, budget - k)
            for i in chosen:
                ids[n + i], conf[i], done[i] = int(pred.token[0, i]), float(pred.conf[0, i]), True
            if all(done):
                break
            logits = self.forward(ids, n - shift if self.cache == "prefix" else 0, None, n - shift)
        tokens = ids[n:].tolist()
        if self.eos_id in tokens:  # nothing after an end-of-text is worth verifying
            tokens = tokens[:tokens.index(self.eos_id) + 1]
        return Draft(tokens=tokens, dists=[None] * len(tokens), shown=conf[:len(tokens)])

    def rollback(self, length: int) -> None:
        """The kept keys and values cover committed tokens only: nothing a rejection takes back."""

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
        Param("block", 4, "tokens the diffusion model drafts per step", min=1, max=schedules.MAX_GAMMA),
        Param("strategy", "fixed_steps", "how the draft unmasks its block", choices=STRATEGIES),
        Param("steps", 1, "fixed_steps: draft forwards per block (0 = one token per forward)", min=0, max=64),
        Param("threshold", 0.9, "threshold: the draft commits every mask at least this confident", min=0.0,
              max=1.0),
        Param("cache", "prefix", "the draft's keys and values of the committed text: kept across steps (prefix, "
              "approximate) or recomputed each draft forward (none)", choices=("prefix", "none")),
    ),
    needs_draft=True,
    draft_kinds=("masked",),
)
