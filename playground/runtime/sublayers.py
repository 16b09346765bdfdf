"""Switch a decoder's attention and MLP sub-layers off, one by one, without touching the model's own forward.

Every supported architecture adds each sub-layer's output to the residual stream (Llama, Qwen2, GPT-2, and GPT-NeoX
with or without its parallel residual). A gate around a sub-layer that returns zeros therefore removes it from the
computation exactly, and because a skipped attention never runs, its KV cache is left untouched. A layer whose two
sub-layers are both off is skipped whole (every supported decoder layer returns its hidden states as they are then).
That is the whole
mechanism behind `self_speculative`, `early_exit` and Unified Layer Skipping, and, with a per-sample mask instead of a
skip set, behind the layer dropout the shipped target was trained with (LayerSkip, arXiv 2404.16710).

A sub-layer is named (layer index, "attn" | "mlp"). Layer 0's attention is never skipped: the model reads the cache
length (and so positions and mask sizes) from layer 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

import torch

ATTENTION_NAMES = ("self_attn", "attn", "attention")
SubLayer = tuple[int, str]


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's list of decoder blocks (model.layers, transformer.h, gpt_neox.layers, ...)."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and hasattr(module[0], "mlp"):
            return module
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}: layer skipping is not supported")


def sublayer_modules(layer: torch.nn.Module) -> dict[str, torch.nn.Module]:
    for name in ATTENTION_NAMES:
        if hasattr(layer, name):
            return {"attn": getattr(layer, name), "mlp": layer.mlp}
    raise ValueError(f"cannot find the attention of {type(layer).__name__}: layer skipping is not supported")


def all_sublayers(num_layers: int) -> list[SubLayer]:
    return [(i, kind) for i in range(num_layers) for kind in ("attn", "mlp")]


def check_skip(skip: Iterable[SubLayer], num_layers: int) -> list[SubLayer]:
    """Validate and sort a skip set; raises ValueError with a readable message."""
    out = sorted({(int(i), str(kind)) for i, kind in skip})
    for i, kind in out:
        if not 0 <= i < num_layers or kind not in ("attn", "mlp"):
            raise ValueError(f"no sub-layer ({i}, {kind!r}) in a {num_layers}-layer model")
    if (0, "attn") in out:
        raise ValueError("layer 0's attention cannot be skipped (the cache length is read from it)")
    return out


class Gates:
    """Gates on every attention and MLP sub-layer of `model`.

    `skip` (a set of sub-layers) switches sub-layers off for inference; `keep` (a [batch, num_layers, 2] 0/1 tensor)
    multiplies each sub-layer's output per sample, for layer dropout in training.
    """

    def __init__(self, model: torch.nn.Module):
        self.num_layers = model.config.num_hidden_layers
        self.skip: frozenset[SubLayer] = frozenset()
        self.keep: torch.Tensor | None = None
        for i, layer in enumerate(decoder_layers(model)):
            for kind, module in sublayer_modules(layer).items():
                module.forward = self._gated(module.forward, (i, kind))
            layer.forward = self._whole(layer.forward, i)

    @staticmethod
    def of(model: torch.nn.Module) -> Gates:
        """The model's gates, installed on first use (always go through here: gates must not be stacked)."""
        gates = getattr(model, "_playground_gates", None)
        if gates is None:
            gates = Gates(model)
            model._playground_gates = gates
        return gates

    def _gated(self, forward, name: SubLayer):
        i, kind = name
        col = 0 if kind == "attn" else 1

        def gated(*args, **kwargs):
            if name in self.skip:
                hidden = args[0] if args else kwargs["hidden_states"]
                zeros = torch.zeros_like(hidden)
                return (zeros, None) if kind == "attn" else zeros
            out = forward(*args, **kwargs)
            if self.keep is None:
                return out
            mask = self.keep[:, i, col].to(dtype=(out[0] if kind == "attn" else out).dtype)[:, None, None]
            return (out[0] * mask, *out[1:]) if kind == "attn" else out * mask
        return gated

    def _whole(self, forward, i: int):
        """A layer with both sub-layers off is the identity: skip its norms and bookkeeping too (on a CPU at
        batch size 1 they cost a third of a layer)."""
        def gated(*args, **kwargs):
            if (i, "attn") in self.skip and (i, "mlp") in self.skip:
                return args[0] if args else kwargs["hidden_states"]
            return forward(*args, **kwargs)
        return gated

    def skipping(self, skip: Iterable[SubLayer]):
        """Run the model with `skip` switched off inside the `with` block."""
        return skipping(self, skip)


@contextmanager
def skipping(holder, skip: Iterable[SubLayer]):
    """Set `holder.skip` to `skip` inside the `with` block (Gates here, the lean runtime's LeanLM)."""
    before, holder.skip = holder.skip, frozenset(skip)
    try:
        yield
    finally:
        holder.skip = before


def layer_dropout_mask(batch: int, num_layers: int, p_max: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample keep mask [batch, num_layers, 2]: drop rate rises linearly from 0 (layer 0) to p_max (last layer),
    as in LayerSkip, so the early layers learn to stand alone and the late ones to refine."""
    rates = torch.linspace(0.0, p_max, num_layers)[None, :, None].expand(batch, num_layers, 2)
    keep = (torch.rand(rates.shape, generator=gen) >= rates).float()
    keep[:, 0, 0] = 1.0
    return keep
