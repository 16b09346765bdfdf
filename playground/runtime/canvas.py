"""Masked-diffusion decoding primitives: the canvas, one denoising forward (with or without Fast-dLLM's KV caches),
and what a forward says about each position. The unmasking strategies are in methods/diffusion.py.

The canvas is the prompt followed by `length` mask tokens, cut into blocks decoded left to right (LLaDA's
semi-autoregressive blocks). A forward reads the whole canvas at once: the model is bidirectional.

Caches (Fast-dLLM, arXiv 2505.22618). A bidirectional model has no exact KV cache: every key depends on every token.
Fast-dLLM reuses keys and values anyway, refreshing them once per block, because they change little within a block:
- `none`: every forward reads the whole canvas (exact; LLaDA).
- `prefix`: the block's first forward reads the whole canvas and keeps the keys and values of everything before the
  block; later forwards of the block read the block and what follows it.
- `dual`: the same, also keeping the keys and values after the block; later forwards read the block alone.

A block model (Fast-dLLM v2; `config.block_size`, tiny-code-block) attends causally across blocks of that size and
both ways inside one, so what comes after the current block never matters and the keys and values before it are
exact, as an autoregressive model's: a forward reads the block alone (or, without a cache, everything up to its end),
`prefix` and `dual` are the same exact cache, kept until the block ends, and a canvas block shorter than the model's
block is a sub-block: its forwards read the whole model block, and commit only inside the sub-block.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from playground.errors import PlaygroundError
from playground.runtime.sampling import Sampling, probs

CACHES = ("none", "prefix", "dual")
CACHED_TYPES = ("bert", "eurobert")  # their attention takes a KV cache, their position ids start at 0


def check_cache(model, cache: str) -> None:
    """Caches need a model whose attention takes past keys and values at the positions given."""
    if cache not in ("none", "auto") and getattr(model.config, "model_type", "") not in CACHED_TYPES:
        raise PlaygroundError(
            f"cache={cache} is implemented for BERT and EuroBERT masked LMs; {type(model).__name__} needs "
            "cache=none")


def additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean [q, k] mask (True: may attend) as the additive [1, 1, q, k] one attention adds to its scores."""
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


def block_span(prompt_len: int, n: int, lo: int, hi: int, size: int) -> tuple[int, int]:
    """[start, end) canvas indices of the block model's block holding generated positions [lo, hi): the aligned
    block of `size` from the first generated position, or [lo, hi) itself when that does not hold them."""
    start = prompt_len + (lo // size) * size
    end = min(start + size, n)
    return (start, end) if prompt_len + hi <= end else (prompt_len + lo, prompt_len + hi)


@dataclass
class Canvas:
    """Prompt + generated positions. `committed_at[i]` is the step that fixed generated position i (-1: masked)."""
    ids: torch.Tensor          # [n] prompt followed by the canvas, mask tokens where nothing is committed yet
    prompt_len: int
    mask_id: int
    block: int
    committed_at: list[int] = field(default_factory=list)
    guess: list[int] = field(default_factory=list)     # per generated position: committed token, or the newest guess
    conf: list[float] = field(default_factory=list)    # its probability when committed or guessed

    @classmethod
    def new(cls, prompt_ids: list[int], length: int, mask_id: int, block: int) -> Canvas:
        ids = torch.tensor(prompt_ids + [mask_id] * length, dtype=torch.long)
        return cls(ids, len(prompt_ids), mask_id, block, [-1] * length, [mask_id] * length, [0.0] * length)

    @property
    def length(self) -> int:
        return len(self.committed_at)

    def blocks(self) -> list[tuple[int, int]]:
        """[start, end) of each block, in generated positions; the last may be shorter."""
        return [(lo, min(lo + self.block, self.length)) for lo in range(0, self.length, self.block)]

    def masked(self, lo: int, hi: int) -> list[int]:
        return [i for i in range(lo, hi) if self.committed_at[i] < 0]

    def commit(self, positions: list[int], tokens: list[int], conf: list[float], step: int) -> None:
        for i, t, c in zip(positions, tokens, conf):
            self.ids[self.prompt_len + i] = t
            self.committed_at[i], self.guess[i], self.conf[i] = step, t, c

    def note_guesses(self, first: int, guess: torch.Tensor, conf: torch.Tensor) -> None:
        """Remember what a forward predicts at the still-masked positions from generated position `first` on."""
        for j, (g, c) in enumerate(zip(guess.tolist(), conf.tolist())):
            if self.committed_at[first + j] < 0:
                self.guess[first + j], self.conf[first + j] = g, c

    def with_commits(self, positions: list[int], tokens: list[int]) -> torch.Tensor:
        ids = self.ids.clone()
        ids[[self.prompt_len + i for i in positions]] = torch.tensor(tokens, dtype=torch.long)
        return ids

    def finished_at_eos(self, eos_id: int | None) -> bool:
        """True once the output is settled: an end-of-text is committed and every position before it is too."""
        if eos_id is None:
            return False
        for i, step in enumerate(self.committed_at):
            if step < 0:
                return False
            if self.guess[i] == eos_id:
                return True
        return False


@dataclass
class Prediction:
    """A forward's view of generated positions first .. first + len - 1 of each canvas in the batch."""
    first: int
    token: torch.Tensor   # [K, m] the token each position would take (argmax, or a sample when sampling)
    conf: torch.Tensor    # [K, m] its probability
    margin: torch.Tensor  # [K, m] top-1 minus top-2 logit (SchED's confidence)

    def row(self, k: int) -> Prediction:
        """Canvas k of the batch alone."""
        return Prediction(self.first, self.token[k:k + 1], self.conf[k:k + 1], self.margin[k:k + 1])


class Denoiser:
    """The masked LM behind a diffusion run: one call, one forward (a batch of canvases counts once), timed."""

    def __init__(self, model, cache: str, sampling: Sampling):
        self.model, self.cache, self.sampling = model, cache, sampling
        # shifted logits (Dream; models adapted from an autoregressive one): position i's output predicts i + 1
        self.shift = 1 if getattr(model.config, "shift_logits", False) else 0
        self.gen = sampling.generator()
        self.kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.forwards, self.seconds = 0, 0.0
        self.block_size = getattr(model.config, "block_size", None)  # a block model (see the module docstring)
        self.kv_end, self.head = -1, None  # block model: where the cache ends, the logits before it

    def block_forward(self, canvases: torch.Tensor, prompt_len: int, lo: int, hi: int, refresh: bool) -> torch.Tensor:
        """A block model's logits predicting generated positions [lo, hi): exact, the cache holding what precedes
        the block."""
        a, b = block_span(prompt_len, canvases.size(1), lo, hi, self.block_size)
        if self.cache == "none" or (refresh and self.kv_end != a):
            allowed = torch.ones(b, b, dtype=torch.bool).tril_()
            allowed[a:, a:] = True  # both ways inside the block, causal before it
            mask = additive(allowed, next(self.model.parameters()).dtype).to(canvases.device)
            cache = DynamicCache() if self.cache != "none" else None
            logits = self.model(input_ids=canvases[:, :b], attention_mask=mask, cache=cache).logits[:, a - 1:b - 1]
            if cache is not None:
                self.kv = [(layer.keys[:, :, :a], layer.values[:, :, :a]) for layer in cache.layers]
                self.kv_end, self.head = a, logits[:1, :1]  # the block's first token: predicted before the block
        else:
            cache = DynamicCache()
            for i, (k, v) in enumerate(self.kv):
                cache.update(k.expand(len(canvases), -1, -1, -1), v.expand(len(canvases), -1, -1, -1), i)
            positions = torch.arange(a, b, device=canvases.device).expand(len(canvases), -1)
            inner = self.model(input_ids=canvases[:, a:b], position_ids=positions, cache=cache).logits[:, :-1]
            logits = torch.cat([self.head.expand(len(canvases), -1, -1), inner], 1)
        first = prompt_len + lo - a
        return logits[:, first:first + hi - lo]

    @torch.inference_mode()
    def predict(self, canvases: torch.Tensor, prompt_len: int, lo: int, hi: int, refresh: bool) -> Prediction:
        """Predict the generated positions from `lo` on for each canvas [K, n], the current block being [lo, hi).

        `refresh` marks a block's first forward: with a cache it reads the whole canvas and stores the keys and
        values the rest of the block reuses."""
        start = time.perf_counter()
        canvases = canvases.to(next(self.model.parameters()).device)
        a, b, n = prompt_len + lo, prompt_len + hi, canvases.size(1)
        first = a - self.shift  # the first position read afresh: with shifted logits, the one before the block
        if self.block_size:
            logits = self.block_forward(canvases, prompt_len, lo, hi, refresh)
        elif self.cache == "none" or refresh:
            cache = DynamicCache() if self.cache != "none" else None
            logits = self.model(input_ids=canvases, cache=cache).logits[:, first:n - self.shift]
            if cache is not None:
                kv = [(layer.keys, layer.values) for layer in cache.layers]
                self.kv = [(k[:, :, :first], v[:, :, :first]) if self.cache == "prefix" else
                           (torch.cat([k[:, :, :first], k[:, :, b:]], 2), torch.cat([v[:, :, :first], v[:, :, b:]], 2))
                           for k, v in kv]
        else:
            end = n if self.cache == "prefix" else b
            cache = DynamicCache()
            for i, (k, v) in enumerate(self.kv):  # a batch of canvases shares the one stored cache
                cache.update(k.expand(len(canvases), -1, -1, -1), v.expand(len(canvases), -1, -1, -1), i)
            positions = torch.arange(first, end, device=canvases.device).expand(len(canvases), -1)
            logits = self.model(input_ids=canvases[:, first:end], position_ids=positions,
                                cache=cache).logits[:, :end - first - self.shift]
        logits = logits.float().cpu()  # on a GPU: waits for the forward, so `seconds` counts it
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return self.read(logits, lo)

    def read(self, logits: torch.Tensor, first: int) -> Prediction:
        top2 = logits.topk(2, dim=-1).values
        if self.sampling.greedy:  # confidence is the plain softmax (probs() would be one-hot)
            dist, token = logits.softmax(-1), logits.argmax(-1)
        else:
            dist = probs(logits, self.sampling)
            token = torch.multinomial(dist.reshape(-1, dist.size(-1)), 1, generator=self.gen).view(dist.shape[:-1])
        conf = dist.gather(-1, token.unsqueeze(-1)).squeeze(-1)
        return Prediction(first, token, conf, top2[..., 0] - top2[..., 1])

    def take_counters(self) -> tuple[int, float]:
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters
