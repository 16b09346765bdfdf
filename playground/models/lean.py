"""A plain-torch Llama decoder block (Llama, Qwen2 and Mistral share its shape, and EuroBERT, attending both ways),
in the style of gpt-fast's model.py.

The same weights as transformers' `LlamaDecoderLayer`, laid out for batch-1 decoding on a CPU: q, k and v in one
matrix, gate and up in one, each stored transposed ([in, out], the fast path of MKL for a few rows), keys and values
written into a preallocated cache by position, attention by `scaled_dot_product_attention` over the rows a mask
allows. A transformers forward spends most of a small model's time outside its matrix products (module calls,
mask and cache bookkeeping, output dataclasses); this one does only what the arithmetic needs.

Used by `runtime/lean.py` (the target and draft models) and `models/eagle.py` (the EAGLE head is one such block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LeanConfig:
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    eps: float
    rope_theta: float
    qkv_bias: bool
    layers: int
    vocab: int
    max_positions: int

    @staticmethod
    def from_hf(config) -> LeanConfig:
        """The shape of a transformers Llama / Qwen2 / Mistral / EuroBERT config; ValueError says what it lacks."""
        kind = getattr(config, "model_type", "?")
        if kind not in ("llama", "qwen2", "mistral", "eurobert"):  # EuroBERT: Llama's layers, attending both ways
            raise ValueError(f"the lean runtime runs Llama, Qwen2, Mistral and EuroBERT models, not {kind!r}")
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"the lean runtime has no {rope['rope_type']!r} rope scaling")
        if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "mlp_bias", False):
            raise ValueError("the lean runtime runs a SiLU-gated MLP without biases only")
        if kind != "qwen2" and getattr(config, "attention_bias", False):  # Qwen2's biases are on q, k and v only
            raise ValueError("the lean runtime has no bias on the attention's output projection (attention_bias)")
        window = getattr(config, "sliding_window", None)
        sliding = getattr(config, "use_sliding_window", kind == "mistral")
        if window and sliding and window < config.max_position_embeddings:
            raise ValueError("the lean runtime has no sliding-window attention")
        heads = config.num_attention_heads
        return LeanConfig(
            hidden=config.hidden_size, heads=heads, kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            intermediate=config.intermediate_size, eps=config.rms_norm_eps,
            rope_theta=float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))),
            qkv_bias=kind == "qwen2",
            layers=config.num_hidden_layers, vocab=config.vocab_size, max_positions=config.max_position_embeddings)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """As transformers' LlamaRMSNorm, in one fused op (float32 throughout: the runtime runs float32 weights)."""
    return F.rms_norm(x, weight.shape, weight, eps)


def matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w for a weight stored [in, out] contiguous: as F.linear of its transpose, which is MKL's fast path for
    a few rows (measured on the 2-core machine: 9 us for [1, 256] x [256, 768], against 450 us for `x @ w`)."""
    return F.linear(x, w.t())


def rope_table(cfg: LeanConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin of every position's rotation, [max_positions, head_dim] each (HF Llama's half-split
    layout). The sin's first half is negated, so that `rotate` needs one roll where HF's rotate_half needs a
    slice, a negation and a cat: the same products, bit for bit (-(a b) = a (-b) in floating point)."""
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.int64, device=device).float()
                                    / cfg.head_dim))
    angles = torch.arange(cfg.max_positions, device=device).float()[:, None] * inv[None, :]  # [P, hd/2]
    sin = angles.sin()
    return torch.cat([angles, angles], dim=-1).cos(), torch.cat([-sin, sin], dim=-1)  # [P, hd] each


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [b, heads, n, hd] rotated by its positions' cos and signed sin [n, hd] (rope_table): x cos +
    rotate_half(x) sin, where rotate_half(x) sin = roll(x, hd/2) * signed sin."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * sin


def attention_bias(allowed: torch.Tensor) -> torch.Tensor:
    """A bool mask [n, rows] (True: may attend) as the additive float mask SDPA adds to its scores: 0 or -inf.
    SDPA turns a bool mask into exactly this on every call; a forward makes it once for all its layers."""
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed, float("-inf"))


def causal_bias(n: int, start: int, device=None) -> torch.Tensor:
    """The causal mask of n new rows after `start` cached ones, [n, start + n], as an additive float mask."""
    return attention_bias(torch.ones(n, start + n, dtype=torch.bool, device=device).tril(start))


class Block(nn.Module):
    """One pre-norm decoder layer: x + attn(norm(x)), then + mlp(norm(x)). Either half can be switched off (layer
    skipping): its output is then zero, exactly, and a skipped attention writes no keys or values."""

    def __init__(self, cfg: LeanConfig):
        super().__init__()
        self.cfg = cfg
        h, q, kv = cfg.hidden, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.attn_norm = nn.Parameter(torch.ones(h))
        self.qkv = nn.Parameter(torch.zeros(h, q + 2 * kv))  # [in, out]: see matmul
        self.qkv_bias = nn.Parameter(torch.zeros(q + 2 * kv)) if cfg.qkv_bias else None
        self.out = nn.Parameter(torch.zeros(q, h))
        self.mlp_norm = nn.Parameter(torch.ones(h))
        self.gate_up = nn.Parameter(torch.zeros(h, 2 * cfg.intermediate))
        self.down = nn.Parameter(torch.zeros(cfg.intermediate, h))

    @torch.no_grad()
    def load_hf(self, layer: nn.Module) -> Block:
        """Copy the weights of a transformers LlamaDecoderLayer (or Qwen2's, Mistral's)."""
        a, m = layer.self_attn, layer.mlp
        self.attn_norm.copy_(layer.input_layernorm.weight)
        self.qkv.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).t())
        if self.qkv_bias is not None:
            self.qkv_bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        self.out.copy_(a.o_proj.weight.t())
        self.mlp_norm.copy_(layer.post_attention_layernorm.weight)
        self.gate_up.copy_(torch.cat([m.gate_proj.weight, m.up_proj.weight]).t())
        self.down.copy_(m.down_proj.weight.t())
        return self

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries [b, heads, n, hd], keys and values [b, kv_heads, n, hd] of x [b, n, h], queries and keys turned
        to their positions' rotations (cos and signed sin [n, hd], rope_table)."""
        cfg, (b, n) = self.cfg, x.shape[:2]
        qkv = matmul(x, self.qkv)  # [b, n, (H + 2 KV) hd]
        if self.qkv_bias is not None:
            qkv = qkv + self.qkv_bias
        qkv = qkv.view(b, n, cfg.heads + 2 * cfg.kv_heads, cfg.head_dim).transpose(1, 2)  # [b, H + 2 KV, n, hd]
        qk = rotate(qkv[:, :cfg.heads + cfg.kv_heads], cos, sin)  # queries and keys turned together
        return qk[:, :cfg.heads], qk[:, cfg.heads:], qkv[:, cfg.heads + cfg.kv_heads:]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               causal: bool = False) -> torch.Tensor:
        """The attention's output [b, n, h]: SDPA over the keys `mask` allows (None: all, or causal), projected."""
        b, _, n, _ = q.shape
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=self.cfg.kv_heads != self.cfg.heads)
        return matmul(y.transpose(1, 2).reshape(b, n, -1), self.out)  # [b, n, h]

    def attention(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, keys: torch.Tensor | None,
                  values: torch.Tensor | None, start: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x [b, n, h] (b is 1 with a cache) at rows start..start+n of the cache `keys`/`values`
        [1, kv_heads, rows, hd] (None: no cache, causal over x alone, for training). `mask` [n, start + n], bool or
        an additive float mask (attention_bias; None: causal)."""
        n = x.shape[1]
        q, k, v = self.project(x, cos, sin)
        if keys is not None:
            keys[:, :, start:start + n] = k
            values[:, :, start:start + n] = v
            k, v = keys[:, :, :start + n], values[:, :, :start + n]
        if mask is None and (n == 1 or keys is None or start == 0):
            return self.attend(q, k, v, None, causal=n > 1)
        return self.attend(q, k, v, causal_bias(n, start, x.device) if mask is None else mask)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = matmul(x, self.gate_up).chunk(2, dim=-1)
        return matmul(F.silu(gate) * up, self.down)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, keys=None, values=None, start: int = 0,
                mask: torch.Tensor | None = None, attn: bool = True, mlp: bool = True) -> torch.Tensor:
        if attn:
            x = x + self.attention(rms_norm(x, self.attn_norm, self.cfg.eps), cos, sin, keys, values, start, mask)
        if mlp:
            x = x + self.mlp(rms_norm(x, self.mlp_norm, self.cfg.eps))
        return x
