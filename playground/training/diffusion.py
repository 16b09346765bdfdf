"""The masked-diffusion model (tiny-code-diffusion): a bidirectional encoder that learns to fill a masked
continuation after an unmasked prompt (LLaDA / MDLM), its training windows, its loss and its held-out loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from playground.training.configs import ModelConfig, TrainConfig
from playground.training.hardware import autocast, device_of
from playground.training.lm import load_first_layers


def build_diffusion_model(cfg: ModelConfig, tokenizer, init: str | None = None):
    """A EuroBERT masked LM (Llama-style blocks with bidirectional attention, RoPE; loaded by AutoModelForMaskedLM;
    its attention takes a KV cache, and RoPE places cached keys anywhere, as Fast-dLLM's dual cache needs).

    With `init` (a shipped causal LM of the same width, e.g. tiny-code), the embeddings, the first layers and the
    final norm start from it and the logits are shifted as Dream 7B does: the output at position
    i predicts position i + 1, the job the AR model already does (`config.shift_logits`). From scratch, BERT and
    pre-LN BERT stayed at the unigram loss (6.5-6.6 nats) for 200-400 steps on this budget; adapted from tiny-code
    the masked loss falls below 4 within 40 steps."""
    from transformers import EuroBertConfig, EuroBertForMaskedLM
    config = EuroBertConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
        rms_norm_eps=1e-6, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        mask_token_id=tokenizer.mask_token_id, shift_logits=init is not None,
    )
    model = EuroBertForMaskedLM(config)
    if init:
        load_first_layers(model, init)
    return model


def predicted(model, hidden: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Logits of the masked positions: from their own outputs, or, with shifted logits, from the outputs one
    position earlier."""
    if getattr(model.config, "shift_logits", False):
        return model.lm_head(hidden[:, :-1][masked[:, 1:]])
    return model.lm_head(hidden[masked])


def line_break_ids(tokenizer) -> np.ndarray:
    """Ids of the tokens that hold a line break (byte-level BPE joins it to the next line's indent)."""
    return np.asarray([i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])])


def end_continuation(row: np.ndarray, end: int, eos: int, pad: int) -> None:
    """The continuation stops at `end`: end-of-text there, padding after it (what the model learns to fill in)."""
    if end < len(row):
        row[end] = eos
        row[end + 1:] = pad


def diffusion_batch_at(tokens: np.ndarray, step: int, cfg: TrainConfig, tokenizer,
                       line_ends: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of step `step` and their prompt lengths. After the prompt comes the continuation; it stops at the
    first end-of-text, or, in an `end_fraction` of the windows, at a random line break at least 8 tokens in (the
    end-of-text takes the break's place), so the model learns to end its output (end-of-text, then padding) and not
    only to fill a fixed-size canvas."""
    rng = np.random.default_rng([cfg.seed, step])
    starts = rng.integers(0, len(tokens) - cfg.seq_len - 1, size=cfg.batch_size)
    prefix = rng.integers(cfg.min_prefix, cfg.max_prefix + 1, size=cfg.batch_size)
    rows = np.stack([tokens[s:s + cfg.seq_len] for s in starts]).astype(np.int64)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    for row, p in zip(rows, prefix):
        ends = [p + i for i in np.flatnonzero(row[p:] == eos)[:1]]
        if rng.random() < cfg.end_fraction:
            lines = p + 8 + np.flatnonzero(np.isin(row[p + 8:], line_ends))
            ends += [int(rng.choice(lines))] if len(lines) else []
        if ends:
            end_continuation(row, min(ends), eos, pad)
    return torch.from_numpy(rows), torch.from_numpy(prefix)


def diffusion_loss(model, x: torch.Tensor, prefix: torch.Tensor, mask_id: int, gen: torch.Generator) -> torch.Tensor:
    """Masked-diffusion loss (LLaDA, MDLM): t ~ U(0,1) per window, each continuation token masked with probability
    t, cross-entropy on masked tokens weighted by 1/t, averaged over all continuation tokens. The prompt is never
    masked. Its value bounds the continuation's negative log-likelihood from above, in nats per token."""
    b, n = x.shape
    t = torch.rand(b, 1, generator=gen).clamp_min(1e-3).to(x.device)
    answer = torch.arange(n, device=x.device)[None] >= prefix[:, None].to(x.device)
    masked = (torch.rand(b, n, generator=gen).to(x.device) < t) & answer
    masked[:, 0] = False  # the first token is always prompt (with shifted logits nothing before it could predict it)
    hidden = model.model(input_ids=torch.where(masked, mask_id, x)).last_hidden_state
    logits = predicted(model, hidden, masked).float()  # the LM head on masked positions only: the rest carry none
    ce = F.cross_entropy(logits, x[masked], reduction="none")
    return (ce / t.expand(b, n)[masked]).sum() / answer.sum()


@torch.no_grad()
def diffusion_heldout_loss(model, windows: torch.Tensor, tokenizer, batch: int = 8, loss=None) -> float:
    """The diffusion loss (or `loss`, with diffusion_loss's arguments) on the held-out windows, each with a 64-token
    prompt, under fixed noise draws."""
    loss = loss or diffusion_loss
    model.eval()
    gen, total, device = torch.Generator().manual_seed(0), 0.0, device_of(model)
    prefix = torch.full((batch,), 64)
    for i in range(0, len(windows), batch):
        x = windows[i:i + batch].clone()
        for row in x.numpy():
            ends = np.flatnonzero(row[64:] == tokenizer.eos_token_id)
            if len(ends):
                end_continuation(row, 64 + int(ends[0]), tokenizer.eos_token_id, tokenizer.pad_token_id)
        with autocast(device):
            total += loss(model, x.to(device), prefix[:len(x)], tokenizer.mask_token_id, gen).item() * len(x)
    model.train()
    return total / len(windows)
