"""The lean runtime: a Llama-family model (Llama, Qwen2, Mistral) run by plain torch on a static KV cache.

`LeanLM` is a drop-in for `CachedLM`: every method that drives a causal LM (chains, trees, layer skipping, feature
drafting) runs on it unchanged. What it does differently:
- one preallocated cache [layers, 1, kv_heads, context, head_dim] for keys and one for values; rows are written
  in place and a rollback only moves the length back (no tensors are cut or copied);
- the blocks of `models/lean.py` (fused QKV and gate/up, SDPA) instead of transformers' modules;
- tree attention takes the bool mask and per-node positions directly;
- layer skipping is two flags per block (`skipping`), and `tap` keeps the final hidden states (what EAGLE reads).
The transformers model stays the reference: the weights are read from it once, and tests compare the two.

    >>> lm = LeanLM(models.load("tiny-code").model)
    >>> lm.forward([1, 2, 3]).shape      # logits after the last token
    torch.Size([1, 4096])
    >>> lm.crop(2); lm.length
    2
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from playground.models.lean import Block, LeanConfig, attention_bias, causal_bias, rms_norm, rope_table
from playground.runtime import sublayers
from playground.runtime.lm import Counted, keep_path_rows
from playground.runtime.sublayers import SubLayer


class LeanModel(nn.Module):
    """The decoder of a transformers Llama-family model with lean blocks. The embedding, final norm and LM head are
    the transformers model's own tensors (shared, not copied)."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.cfg = LeanConfig.from_hf(hf_model.config)
        decoder = hf_model.base_model
        device = next(hf_model.parameters()).device
        self.blocks = nn.ModuleList(Block(self.cfg).load_hf(layer) for layer in decoder.layers).to(device)
        self.embed = hf_model.get_input_embeddings().weight     # [vocab, h]
        self.norm = decoder.norm.weight                          # [h]
        self.head = hf_model.get_output_embeddings().weight      # [vocab, h] (stored transposed: F.linear is fast)
        self.cos, self.sin = rope_table(self.cfg, device)        # [P, hd] each

    def new_cache(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        shape = (c.layers, 1, c.kv_heads, c.max_positions, c.head_dim)
        return torch.empty(shape, device=self.embed.device), torch.empty(shape, device=self.embed.device)


_lean: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # transformers model -> its LeanModel


def lean_model(hf_model: nn.Module) -> LeanModel:
    """The lean version of a loaded model, built once (ValueError: the architecture is not supported)."""
    net = _lean.get(hf_model)
    if net is None:
        with torch.no_grad():
            net = _lean[hf_model] = LeanModel(hf_model).eval().requires_grad_(False)
    return net


def supports(hf_model: nn.Module) -> str | None:
    """None when the lean runtime can run the model, else why not."""
    try:
        LeanConfig.from_hf(hf_model.config)
    except (ValueError, AttributeError) as exc:
        return str(exc)
    return None


def with_rows(t: torch.Tensor, rows: int, dim: int) -> torch.Tensor:
    """`t` with at least `rows` entries along `dim` (zeros added). A cache holds one row per context position, but a
    draft tree verified near the end of the context takes rows past it: its nodes sit at positions inside the
    context, side by side in rows after the committed tokens (transformers' cache just grows; so does this one)."""
    if rows <= t.shape[dim]:
        return t
    shape = list(t.shape)
    shape[dim] = rows - t.shape[dim]
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


class CacheState:
    """The cache and its length, shared by the views of one run (a self-speculative draft reads the target's)."""

    def __init__(self, net: LeanModel):
        self.keys, self.values = net.new_cache()
        self.layer_keys, self.layer_values = list(self.keys), list(self.values)  # per-layer views, made once
        self.length = 0
        self.features = torch.zeros(net.cfg.max_positions, net.cfg.hidden, device=net.embed.device)

    def reserve(self, rows: int) -> None:
        """Room for `rows` rows (past the context only for a tree's nodes; see with_rows)."""
        if rows > self.keys.shape[-2]:
            self.keys, self.values = with_rows(self.keys, rows, -2), with_rows(self.values, rows, -2)
            self.layer_keys, self.layer_values = list(self.keys), list(self.values)
            self.features = with_rows(self.features, rows, 0)


class LeanLM(Counted):
    """A LeanModel with its cache and counters; the same interface as `runtime.lm.CachedLM`."""

    def __init__(self, model: nn.Module, state: CacheState | None = None):
        self.model = model  # the transformers model: config, device, and what the checks read
        self.net = lean_model(model)
        self.state = state or CacheState(self.net)
        self.forwards, self.seconds = 0, 0.0
        self.skip: frozenset[SubLayer] = frozenset()
        self.tap = False  # keep the final hidden state of every row (feature drafters read them)

    @property
    def device(self) -> torch.device:
        return self.net.embed.device

    @property
    def length(self) -> int:
        return self.state.length

    @property
    def num_layers(self) -> int:
        return self.net.cfg.layers

    @property
    def features(self) -> torch.Tensor:
        """Final (normed) hidden states by cache row, [context, h]; valid for rows below `length` when tapped."""
        return self.state.features

    @torch.inference_mode()
    def run(self, ids: list[int], positions: list[int] | None, allowed: torch.Tensor | None, keep: int) -> torch.Tensor:
        """Feed `ids` at cache rows length.. (at `positions`, default the same rows), attending as `allowed`
        [n, length + n] says (default causal). Returns float32 logits of the last `keep` rows."""
        start = time.perf_counter()
        state, net, n = self.state, self.net, len(ids)
        begin = state.length
        last = begin + n - 1 if positions is None else max(positions, default=begin)
        if last >= net.cfg.max_positions:
            raise ValueError(f"the context holds {net.cfg.max_positions} tokens; position {last} asked")
        state.reserve(begin + n)
        if positions is None:  # rows and positions agree: views, no gather
            cos, sin = net.cos[begin:begin + n], net.sin[begin:begin + n]  # [n, hd]
        else:
            where = torch.tensor(positions, device=self.device)
            cos, sin = net.cos[where], net.sin[where]
        if allowed is not None:  # built once here, not in each layer
            mask = attention_bias(allowed.to(self.device))  # [n, begin + n]
        else:
            mask = causal_bias(n, begin, self.device) if n > 1 and begin > 0 else None  # None: SDPA's own
        x = F.embedding(torch.tensor([ids], device=self.device), net.embed)  # [1, n, h]
        for i, (block, keys, values) in enumerate(zip(net.blocks, state.layer_keys, state.layer_values)):
            attn, mlp = (i, "attn") not in self.skip, (i, "mlp") not in self.skip
            if attn or mlp:
                x = block(x, cos, sin, keys, values, begin, mask, attn, mlp)
        x = rms_norm(x[0], net.norm, net.cfg.eps)  # [n, h]
        if self.tap:
            state.features[begin:begin + n] = x
        logits = F.linear(x[-keep:], net.head).float().cpu()  # [keep, vocab]
        state.length = begin + n
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def forward(self, ids: list[int], keep: int = 1) -> torch.Tensor:
        """Feed `ids` after the cached tokens; float32 logits of the last `keep` positions, [keep, vocab]."""
        return self.run(ids, None, None, keep)

    def forward_masked(self, ids: list[int], positions: list[int], allowed: torch.Tensor) -> torch.Tensor:
        """Tree attention: `allowed` bool [n, length + n], one position per token; logits of every row."""
        return self.run(ids, positions, allowed, len(ids))

    def crop(self, length: int) -> None:
        self.state.length = min(self.state.length, length)

    @torch.inference_mode()
    def keep_rows(self, committed: int, path: list[int]) -> None:
        """Keep rows 0..committed and then the rows committed + i for i in `path`, in that order (tree rollback)."""
        keep_path_rows([self.state.keys, self.state.values], committed, path, -2)
        keep_path_rows([self.state.features], committed, path, 0)
        self.crop(committed + len(path))

    def share(self) -> LeanLM:
        """Another view of the same cache, with its own counters and skip set (self-speculative drafting)."""
        return LeanLM(self.model, self.state)

    def skipping(self, skip: Iterable[SubLayer]):
        """Run with the sub-layers `skip` switched off inside the `with` block."""
        return sublayers.skipping(self, skip)
