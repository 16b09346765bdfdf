"""Thin helpers around a transformers causal LM with a KV cache: the only way methods call a model."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from playground.runtime.sublayers import Gates, SubLayer


class Counted:
    """A runner that counts its forwards and their seconds (`forwards`, `seconds`), read per step."""
    forwards: int
    seconds: float

    def take_counters(self) -> tuple[int, float]:
        """Forwards and seconds since the last call, then reset (per-step accounting)."""
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters


def keep_path_rows(tensors: Iterable[torch.Tensor], committed: int, path: list[int], dim: int) -> None:
    """In each tensor, move rows committed + i for i in `path` (along `dim`) down to follow the first `committed`,
    in that order: a tree's accepted path, after its verification (the caller then crops the rest). A path through
    the first nodes is already where it belongs. Copies a few rows, where gathering the kept ones would copy all."""
    if path == list(range(len(path))):
        return
    for t in tensors:
        src = torch.tensor([committed + i for i in path], device=t.device)  # index_select wants its device
        t.narrow(dim, committed, len(path)).copy_(t.index_select(dim, src))


@dataclass
class CachedLM(Counted):
    """A causal LM together with its KV cache and counters of how often and how long it ran."""
    model: torch.nn.Module
    cache: DynamicCache = None
    forwards: int = 0
    seconds: float = 0.0
    tap: bool = False  # keep the final hidden state of every row (feature drafters read them)
    _keep_arg: bool = field(default=False, repr=False)
    _features: torch.Tensor | None = field(default=None, repr=False)

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

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def features(self) -> torch.Tensor:
        """Final (normed) hidden states by cache row, [rows, h]; valid for rows below `length` when tapped."""
        return self._features

    @torch.inference_mode()
    def forward(self, ids: list[int], keep: int = 1, **model_kwargs) -> torch.Tensor:
        """Feed `ids` after the cached tokens; return float32 logits of the last `keep` positions, [keep, vocab].

        `model_kwargs` go to the model as they are (tree verification passes its mask and position ids)."""
        start = time.perf_counter()
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        # `cache=`: transformers 5.24 renamed `past_key_values` (requirements.txt's lower bound); the old name warns
        if self.tap:  # the decoder's last hidden state, then the LM head on the rows asked for
            begin = self.length
            hidden = self.model.base_model(input_ids=x, cache=self.cache, use_cache=True, **model_kwargs)
            hidden = hidden.last_hidden_state[0]  # [n, h]
            self._store_features(begin, hidden)
            logits = self.model.get_output_embeddings()(hidden[-keep:]).float().cpu()
        else:
            kwargs = {"logits_to_keep": keep} if self._keep_arg else {}
            out = self.model(input_ids=x, cache=self.cache, use_cache=True, **kwargs, **model_kwargs)
            logits = out.logits[0, -keep:].float().cpu()  # methods work on the CPU; on a GPU this waits for it
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def _store_features(self, begin: int, hidden: torch.Tensor) -> None:
        need = begin + hidden.shape[0]
        if self._features is None or self._features.shape[0] < need:
            grown = torch.zeros(max(need, 2 * (0 if self._features is None else self._features.shape[0]), 64),
                                hidden.shape[1], device=hidden.device)
            if self._features is not None:
                grown[:self._features.shape[0]] = self._features
            self._features = grown
        self._features[begin:need] = hidden

    def forward_masked(self, ids: list[int], positions: list[int], allowed: torch.Tensor) -> torch.Tensor:
        """Tree attention: `allowed` bool [n, length + n] (as transformers' additive 4D mask), one position per
        token; float32 logits of every row."""
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]
        return self.forward(ids, keep=len(ids), attention_mask=mask.to(self.device),
                            position_ids=torch.tensor([positions], device=self.device))

    def crop(self, length: int) -> None:
        """Drop cached entries beyond the first `length` tokens (rolling back rejected drafts).

        Layer by layer: after a layer-skipping draft, skipped layers hold fewer entries than the others.
        """
        for layer in self.self_cache.layers:
            extra = layer.get_seq_length() - length
            if extra > 0:
                layer.crop(-extra)  # transformers 5: a negative count of tokens to drop

    @torch.inference_mode()  # the cache holds inference tensors, which only change in place inside it
    def keep_rows(self, committed: int, path: list[int]) -> None:
        """Keep the first `committed` rows, then rows committed + i for i in `path`, in that order, in every layer
        (and the tapped features); drop the rest (a tree's other branches)."""
        keep_path_rows([t for layer in self.cache.layers for t in (layer.keys, layer.values)], committed, path, -2)
        keep_path_rows([self._features] if self._features is not None else [], committed, path, 0)
        self.crop(committed + len(path))

    def share(self) -> CachedLM:
        """Another view of the same cache with its own counters (self-speculative drafting)."""
        return CachedLM(self.model, cache=self.cache)

    def skipping(self, skip: Iterable[SubLayer]):
        """Run with the sub-layers `skip` switched off inside the `with` block (gates on the model's modules)."""
        return Gates.of(self.model).skipping(skip)


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

