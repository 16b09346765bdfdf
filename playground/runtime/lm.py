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
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def self_cache(self) -> DynamicCache:
        """The keys and values of the tokens this model generated and read (an encoder-decoder's decoder side)."""
        return self.cache

    @property
    def length(self) -> int:
        """Number of tokens whose keys and values are in the cache."""
        return self.self_cache.get_seq_length()

    @torch.inference_mode()
    def forward(self, ids: list[int], keep: int = 1, **model_kwargs) -> torch.Tensor:
        """Feed `ids` after the cached tokens; return float32 logits of the last `keep` positions, [keep, vocab].

        `model_kwargs` go to the model as they are (tree verification passes its mask and position ids)."""
        start = time.perf_counter()
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        kwargs = {"logits_to_keep": keep} if self._keep_arg else {}
        # `cache=`: transformers 5.24 renamed `past_key_values` (requirements.txt's lower bound); the old name warns
        out = self.model(input_ids=x, cache=self.cache, use_cache=True, **kwargs, **model_kwargs)
        logits = out.logits[0, -keep:].float().cpu()  # methods work on the CPU; on a GPU this waits for the forward
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def crop(self, length: int) -> None:
        """Drop cached entries beyond the first `length` tokens (rolling back rejected drafts).

        Layer by layer: after a layer-skipping draft, skipped layers hold fewer entries than the others.
        """
        for layer in self.self_cache.layers:
            extra = layer.get_seq_length() - length
            if extra > 0:
                layer.crop(-extra)  # transformers 5: a negative count of tokens to drop

    def take_counters(self) -> tuple[int, float]:
        """Forwards and seconds since the last call, then reset (per-step accounting)."""
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters


class CachedSeq2Seq(CachedLM):
    """An encoder-decoder with its decoder's KV cache. The first `forward` is the prefill: it encodes the given ids
    as the source and feeds the decoder its start token; later calls feed decoder tokens. So the autoregressive
    method runs on it unchanged, and `length`/`crop` count decoder tokens."""

    def __post_init__(self):
        from transformers import EncoderDecoderCache
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.encoded = None
        self.source_mask = None

    @property
    def self_cache(self) -> DynamicCache:
        return self.cache.self_attention_cache

    @torch.inference_mode()
    def encode(self, source_ids: list[int]) -> None:
        start = time.perf_counter()
        x = torch.tensor([source_ids], dtype=torch.long, device=self.device)
        self.source_mask = torch.ones_like(x)
        self.encoded = self.model.get_encoder()(input_ids=x, attention_mask=self.source_mask)
        self.seconds += time.perf_counter() - start

    @torch.inference_mode()
    def forward(self, ids: list[int], keep: int = 1, **model_kwargs) -> torch.Tensor:
        if self.encoded is None:
            self.encode(ids)
            ids = [self.model.config.decoder_start_token_id]
        start = time.perf_counter()
        out = self.model(encoder_outputs=self.encoded, attention_mask=self.source_mask,
                         decoder_input_ids=torch.tensor([ids], dtype=torch.long, device=self.device),
                         cache=self.cache, use_cache=True, **model_kwargs)
        logits = out.logits[0, -keep:].float().cpu()
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

