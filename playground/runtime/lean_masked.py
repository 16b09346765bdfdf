"""The lean runtime for a bidirectional masked LM: EuroBERT (tiny-code-diffusion, tiny-code-block) run by the
plain-torch blocks of `models/lean.py`, attending both ways.

`LeanMaskedLM` takes the call the diffusion code makes of transformers' `EuroBertForMaskedLM` (runtime/canvas.py's
Denoiser, methods/speculative_diffusion.py's drafter): input ids [B, n], an optional additive attention mask, position
ids, and a `DynamicCache` whose keys and values it extends as transformers' attention does, so Fast-dLLM's prefix and
dual caches and the block model's exact cache work unchanged. What it leaves out is what a small model on a CPU pays
for most in transformers: module calls, mask building, output dataclasses (a draft forward of tiny-code-diffusion cost
1.5x a lean forward of tiny-code, twice its layers, in session 18).

    >>> masked = lean_masked(models.load("tiny-code-diffusion").model)
    >>> masked(input_ids=torch.tensor([[5, 6, 2, 2]])).logits.shape
    torch.Size([1, 4, 4096])
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from playground.models.lean import rms_norm
from playground.runtime.lean import lean_model
from playground.runtime.lean import supports as layers_supported

MASKED_TYPES = ("eurobert",)


@dataclass
class MaskedOutput:
    logits: torch.Tensor  # [B, n, vocab]


class LeanMaskedLM(nn.Module):
    """A EuroBERT masked LM on lean blocks (the weights are shared with the transformers model, not copied)."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.config = hf_model.config  # what the callers read: shift_logits, block_size, model_type, mask token
        self.net = lean_model(hf_model)
        self.name_or_path = getattr(hf_model, "name_or_path", "")

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache=None) -> MaskedOutput:
        """Logits of every fed position. `attention_mask`: additive, broadcastable to [B, heads, n, past + n] (None:
        every position sees every other); `position_ids` [B, n], the same for each row (default: after the cache);
        `cache`: a DynamicCache of the keys and values before the fed ids, extended with theirs."""
        net, n = self.net, input_ids.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            cos, sin = net.cos[past:past + n], net.sin[past:past + n]  # [n, hd]
        else:
            cos, sin = net.cos[position_ids[0]], net.sin[position_ids[0]]
        x = F.embedding(input_ids, net.embed)  # [B, n, h]
        for i, block in enumerate(net.blocks):
            q, k, v = block.project(rms_norm(x, block.attn_norm, net.cfg.eps), cos, sin)
            if cache is not None:
                k, v = cache.update(k, v, i)  # [B, kv_heads, past + n, hd]
            x = x + block.attend(q, k, v, attention_mask)
            x = x + block.mlp(rms_norm(x, block.mlp_norm, net.cfg.eps))
        return MaskedOutput(F.linear(rms_norm(x, net.norm, net.cfg.eps), net.head))


class StaticKV:
    """A preallocated key/value cache with the two calls LeanMaskedLM makes of a DynamicCache: the first `length`
    rows are the kept past, and a forward writes its rows after them in place (no tensor is concatenated or copied:
    a DynamicCache rebuilt for every forward copied the whole past twice). Setting `length` back forgets the rows
    after it, which is all a drafter that keeps only committed text needs."""

    def __init__(self, net, rows: int | None = None):
        cfg = net.cfg
        shape = (cfg.layers, 1, cfg.kv_heads, rows or cfg.max_positions, cfg.head_dim)
        self.keys = torch.empty(shape, device=net.embed.device)  # [layers, 1, kv_heads, rows, hd]
        self.values = torch.empty_like(self.keys)
        self.length = 0

    def get_seq_length(self) -> int:
        return self.length

    def update(self, k: torch.Tensor, v: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[-2]
        if end > self.keys.shape[-2]:
            raise ValueError(f"the cache holds {self.keys.shape[-2]} positions; {end} asked")
        self.keys[layer, :, :, self.length:end] = k
        self.values[layer, :, :, self.length:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


_lean: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # transformers model -> its LeanMaskedLM


def supports(hf_model: nn.Module) -> str | None:
    """None when the lean runtime can run this masked LM, else why not."""
    kind = getattr(hf_model.config, "model_type", "?")
    if kind not in MASKED_TYPES:
        return f"the lean runtime runs EuroBERT masked LMs, not {kind!r}"
    return layers_supported(hf_model)


def lean_masked(hf_model: nn.Module) -> LeanMaskedLM:
    """The lean version of a loaded masked LM, built once."""
    net = _lean.get(hf_model)
    if net is None:
        net = _lean[hf_model] = LeanMaskedLM(hf_model).eval()
    return net
