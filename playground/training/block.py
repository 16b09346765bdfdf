"""Block diffusion adapted from an autoregressive model (Fast-dLLM v2, arXiv 2509.26328; BD3-LM, arXiv 2503.09573):
tiny-code-block, all of tiny-code's weights in a EuroBERT masked LM whose attention is causal across blocks and
bidirectional inside a block, trained on [noisy copy ; clean copy] of each window with complementary masks.

Layout of a training row (length 2n, both halves at positions 0..n-1):
- the clean half attends causally, token by token, exactly as the autoregressive model does: its keys and values
  are the exact KV cache a decoder keeps for finished blocks, and it still learns next-token prediction;
- the noisy half, cut into blocks of `block_size`, attends to its own block both ways and to the clean half before
  the block.
Token shift kept from the autoregressive model: the output at position i predicts token i + 1. Inside a block the
masked token i + 1 is predicted from the noisy output at i; a block's first token from the clean output just before
the block (the autoregressive prediction, which is what a decoder has when a block starts).
Complementary masks (Fast-dLLM v2): each window goes in twice, once with mask m and once with its complement, so every
continuation token is learned from every window."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from playground.runtime.canvas import additive
from playground.training.configs import ModelConfig
from playground.training.diffusion import build_diffusion_model, diffusion_heldout_loss


def build_block_model(cfg: ModelConfig, tokenizer, init: str, block_size: int):
    """The diffusion model's EuroBERT with every layer of `init` (shifted logits), marked as a block model."""
    model = build_diffusion_model(cfg, tokenizer, init)
    model.config.block_size = block_size  # saved in config.json: the Denoiser reads it (runtime/canvas.py)
    return model


def training_mask(n: int, block: int) -> torch.Tensor:
    """[2n, 2n] allowed attention of a [noisy ; clean] row (see the module docstring)."""
    pos = torch.arange(n)
    blk = pos // block
    noisy_noisy = blk[:, None] == blk[None, :]
    noisy_clean = pos[None, :] < (blk * block)[:, None]
    clean_clean = pos[None, :] <= pos[:, None]
    top = torch.cat([noisy_noisy, noisy_clean], 1)
    bottom = torch.cat([torch.zeros(n, n, dtype=torch.bool), clean_clean], 1)
    return torch.cat([top, bottom], 0)


def block_loss(model, x: torch.Tensor, prefix: torch.Tensor, mask_id: int, gen: torch.Generator,
               ar_weight: float = 1.0) -> torch.Tensor:
    """Masked-diffusion loss of the noisy half (1/t weighted, over continuation tokens, complementary masks) plus
    `ar_weight` x the clean half's next-token loss on the continuation."""
    b, n = x.shape
    block = model.config.block_size
    dev = x.device
    answer = torch.arange(n, device=dev)[None] >= prefix[:, None].to(dev)
    t = torch.rand(b, 1, generator=gen).clamp(1e-3, 1 - 1e-3).to(dev)
    draw = torch.rand(b, n, generator=gen).to(dev)
    masked = torch.cat([(draw < t) & answer, (draw >= t) & answer])  # a mask and its complement
    ratio = torch.cat([t, 1 - t]).expand(2 * b, n)
    xx = torch.cat([x, x])
    noisy = torch.where(masked, mask_id, xx)
    dtype = model.model.embed_tokens.weight.dtype
    attn = additive(training_mask(n, block), dtype).to(dev)
    pos = torch.arange(n, device=dev).repeat(2)[None].expand(2 * b, -1)
    hidden = model.model(input_ids=torch.cat([noisy, xx], 1), attention_mask=attn, position_ids=pos).last_hidden_state
    h_noisy, h_clean = hidden[:, :n], hidden[:, n:]
    first = (torch.arange(n, device=dev) % block == 0)[None].expand(2 * b, -1)
    # the hidden state that predicts position p: noisy p-1 inside a block, clean p-1 at a block's first token
    source = torch.where(first[:, 1:, None], h_clean[:, :-1], h_noisy[:, :-1])
    target_masked = masked[:, 1:]
    logits = model.lm_head(source[target_masked]).float()
    ce = F.cross_entropy(logits, xx[:, 1:][target_masked], reduction="none")
    diffusion = (ce / ratio[:, 1:][target_masked]).sum() / (2 * answer.sum())
    if not ar_weight:
        return diffusion
    ar_keep = answer[:, 1:]
    ar = F.cross_entropy(model.lm_head(h_clean[:b, :-1][ar_keep]).float(), x[:, 1:][ar_keep])
    return diffusion + ar_weight * ar


def block_heldout_loss(model, windows: torch.Tensor, tokenizer) -> float:
    """The block-diffusion loss alone (no next-token term) on held-out windows with a 64-token prompt, fixed noise."""
    return diffusion_heldout_loss(model, windows, tokenizer, batch=4, loss=functools.partial(block_loss, ar_weight=0.0))
