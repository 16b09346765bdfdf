"""Thin helpers around a transformers causal LM with a KV cache: the only way methods call a model."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache


@dataclass
class CachedLM:
    """A causal LM together with its KV cache and counters of how often and how long it ran."""
    model: torch.nn.Module
    cache: DynamicCache = None
    forwards: int = 0
    seconds: float = 0.0
    _keep_arg: bool = field(default=False, repr=False)

    def __post_init__(self):
        if self.cache is None:  # a cache passed in is shared: self-speculative drafting runs on the target's own
            self.cache = DynamicCache(config=self.model.config)
        self._keep_arg = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    @property
    def length(self) -> int:
        """Number of tokens whose keys and values are in the cache."""
        return self.cache.get_seq_length()

    @torch.inference_mode()
    def forward(self, ids: list[int], keep: int = 1, **model_kwargs) -> torch.Tensor:
        """Feed `ids` after the cached tokens; return float32 logits of the last `keep` positions, [keep, vocab].

        `model_kwargs` go to the model as they are (tree verification passes its mask and position ids)."""
        start = time.perf_counter()
        x = torch.tensor([ids], dtype=torch.long)
        kwargs = {"logits_to_keep": keep} if self._keep_arg else {}
        out = self.model(input_ids=x, past_key_values=self.cache, use_cache=True, **kwargs, **model_kwargs)
        logits = out.logits[0, -keep:].float()
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def crop(self, length: int) -> None:
        """Drop cached entries beyond the first `length` tokens (rolling back rejected drafts).

        Layer by layer: after a layer-skipping draft, skipped layers hold fewer entries than the others.
        """
        for layer in self.cache.layers:
            extra = layer.get_seq_length() - length
            if extra > 0:
                layer.crop(-extra)  # transformers 5: a negative count of tokens to drop

    def take_counters(self) -> tuple[int, float]:
        """Forwards and seconds since the last call, then reset (per-step accounting)."""
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters
