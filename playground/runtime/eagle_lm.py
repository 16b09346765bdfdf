"""An EAGLE head driven like a draft LM over token ids, so that the chain and tree drafters run it unchanged.

The head's row t reads (feature of row t-1, token t). A row's predecessor is row t-1 in a chain, and in a tree the
nearest earlier row its attention mask allows (its parent, or the root). The feature of a predecessor row is the
target's own (`target.features`, tapped during verification) when the target has computed that row, and otherwise
the head's own prediction for it (a drafted token has no target feature yet).

Rows fed with predicted features are provisional: once the target has verified their tokens, `crop` rolls the head
back to the last row fed with real features, and the drafter feeds the accepted tokens again, now with the target's
features (EAGLE recomputes them the same way).

    >>> target = LeanLM(models.load("tiny-code").model)      # tapped by EagleLM: it keeps its features
    >>> head = EagleLM(models.load("tiny-code-eagle").model, target)
    >>> target.forward(prompt[:-1]); head.forward(prompt)[-1].argmax()   # the head's guess after the prompt
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from playground.models.eagle import EagleHead
from playground.models.lean import rope_table
from playground.runtime.lean import with_rows
from playground.runtime.lm import Counted


class EagleLM(Counted):
    """The head, its own one-layer KV cache, and the rows it has fed; the drafting side of `CachedLM`'s interface."""

    def __init__(self, head: EagleHead, target):
        self.model, self.target = head, target
        target.tap = True
        cfg = head.config.lean()
        self.embed = target.model.get_input_embeddings().weight     # [vocab, h], shared with the target
        self.head = target.model.get_output_embeddings().weight     # [vocab, h]
        device = self.embed.device
        self.cos, self.sin = rope_table(cfg, device)
        shape = (1, cfg.kv_heads, cfg.max_positions, cfg.head_dim)
        self.keys, self.values = torch.zeros(shape, device=device), torch.zeros(shape, device=device)
        self.out = torch.zeros(cfg.max_positions, cfg.hidden, device=device)  # the head's f^ by row
        self.length = 0   # rows in the head's cache
        self.real = 0     # the leading rows fed with the target's own features
        self.forwards, self.seconds = 0, 0.0

    @property
    def device(self) -> torch.device:
        return self.embed.device

    def inputs(self, preds: list[int]) -> torch.Tensor:
        """The feature each row reads, [n, h]: the target's for a row it has computed, the head's own else, zeros
        before the first row."""
        known, first, n = self.target.length, preds[0], len(preds)
        if first >= 0 and preds == list(range(first, first + n)):  # a chain's consecutive rows: slices, no gather
            split = min(max(known - first, 0), n)  # the leading rows the target has computed
            own = self.out[first + split:first + n]
            if split == 0:
                return own
            theirs = self.target.features[first:first + split]
            return theirs if split == n else torch.cat([theirs, own])  # [n, h]
        p = torch.tensor(preds, device=self.device)  # [n]
        own = self.out[p.clamp(min=0)]
        if known:
            theirs = self.target.features[p.clamp(0, known - 1)]
            own = torch.where((p < known)[:, None], theirs, own)
        return own.masked_fill((p < 0)[:, None], 0.0)  # [n, h]

    @torch.inference_mode()
    def run(self, ids: list[int], preds: list[int], positions: list[int], mask: torch.Tensor | None,
            keep: int) -> torch.Tensor:
        start = time.perf_counter()
        begin, n = self.length, len(ids)
        if begin + n > self.out.shape[0]:  # a tree's nodes near the end of the context: rows past it
            self.keys, self.values = with_rows(self.keys, begin + n, -2), with_rows(self.values, begin + n, -2)
            self.out = with_rows(self.out, begin + n, 0)
        if positions == list(range(begin, begin + n)):  # rows at their own positions: views
            cos, sin = self.cos[begin:begin + n], self.sin[begin:begin + n]  # [n, hd]
        else:
            where = torch.tensor(positions, device=self.device)
            cos, sin = self.cos[where], self.sin[where]
        x = self.model(self.inputs(preds)[None], F.embedding(torch.tensor([ids], device=self.device), self.embed),
                       cos, sin, self.keys, self.values, begin, mask)[0]  # [n, h]
        self.out[begin:begin + n] = x
        if self.real == begin:  # extend the real prefix by the rows that read the target's features
            known = self.target.length
            self.real += next((j for j, p in enumerate(preds) if p >= known), n)
        self.length = begin + n
        logits = F.linear(x[-keep:], self.head).float().cpu()
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def forward(self, ids: list[int], keep: int = 1) -> torch.Tensor:
        begin = self.length
        rows = list(range(begin, begin + len(ids)))
        return self.run(ids, [r - 1 for r in rows], rows, None, keep)

    def forward_masked(self, ids: list[int], positions: list[int], allowed: torch.Tensor) -> torch.Tensor:
        begin, n = self.length, len(ids)
        rows = torch.arange(begin + n)
        earlier = allowed & (rows[None, :] < rows[begin:, None])  # [n, begin + n]: rows before each node's own
        preds = ((earlier * (rows + 1)).amax(-1) - 1).tolist()   # the nearest one it sees; -1: none
        return self.run(ids, preds, positions, allowed.to(self.device), n)

    def crop(self, length: int) -> None:
        """Keep `length` rows at most, and no row fed with the head's own features."""
        self.length = min(self.length, length, self.real)
        self.real = min(self.real, self.length)
