"""The causal LMs (tiny-code, its drafts, the deep pair): the model, its training batches, its held-out loss and the
losses it learns from (next token, LayerSkip's layer dropout and early exits, a teacher's distributions).

Batches depend only on (seed, step), so a resumed run sees the same batches as an unbroken one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from playground.models.loading import MODELS_DIR
from playground.runtime.sublayers import Gates, decoder_layers, layer_dropout_mask
from playground.training.configs import ModelConfig, TrainConfig
from playground.training.hardware import autocast, device_of


def build_model(cfg: ModelConfig, tokenizer):
    """A new Llama-style causal LM of cfg's shape over the shared tokenizer, its embeddings tied to its LM head."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def load_first_layers(model, source: str) -> None:
    """Start `model` from the shipped causal LM `source` of the same width: its embeddings, its first layers (as
    many as `model` has) and its final norm (the names match: model.embed_tokens, model.layers.N..., model.norm)."""
    from transformers import AutoModelForCausalLM
    weights = AutoModelForCausalLM.from_pretrained(MODELS_DIR / source, dtype=torch.float32).state_dict()
    n = model.config.num_hidden_layers
    kept = {k: v for k, v in weights.items() if not k.startswith("model.layers.") or int(k.split(".")[2]) < n}
    model.load_state_dict(kept, strict=False)
    model.tie_weights()


def batch_at(tokens: np.ndarray, step: int, cfg: TrainConfig) -> torch.Tensor:
    """The batch of step `step`: random windows drawn from a generator seeded by (seed, step).

    A `repeat_fraction` of the windows end by repeating their own last stretch of 32 to seq_len/2 tokens, word
    for word: a model this small seldom learns to copy from its context on 8M tokens of plain code, and copying is
    what prompt lookup and CopySpec drafts bet on."""
    rng = np.random.default_rng([cfg.seed, step])
    starts = rng.integers(0, len(tokens) - cfg.seq_len - 1, size=cfg.batch_size)
    rows = []
    for s in starts:
        row = tokens[s:s + cfg.seq_len]
        if rng.random() < cfg.repeat_fraction:
            n = int(rng.integers(32, cfg.seq_len // 2 + 1))
            head = tokens[s:s + cfg.seq_len - n]
            row = np.concatenate([head, head[-n:]])
        rows.append(row)
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def eval_windows(tokens: np.ndarray, cfg: TrainConfig) -> torch.Tensor:
    """Fixed, evenly spaced held-out windows: the same for every model, so losses compare."""
    starts = np.linspace(0, len(tokens) - cfg.seq_len - 1, cfg.eval_windows).astype(np.int64)
    return torch.from_numpy(np.stack([tokens[s:s + cfg.seq_len] for s in starts]).astype(np.int64))


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, batch: int = 8) -> float:
    """Mean next-token cross-entropy on the held-out windows, in nats per token."""
    model.eval()
    total, count, device = 0.0, 0, device_of(model)
    for i in range(0, len(windows), batch):
        x = windows[i:i + batch].to(device)
        with autocast(device):
            logits = model(input_ids=x).logits.float()
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum")
        total, count = total + loss.item(), count + x[:, 1:].numel()
    model.train()
    return total / count


def next_token_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), x[:, 1:].reshape(-1))


def layerskip_loss(model, x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Next-token loss with per-sample sub-layer dropout, plus the early-exit loss of a few random layers."""
    gates = Gates.of(model)
    layers = decoder_layers(model)
    n = len(layers)
    gates.keep = layer_dropout_mask(len(x), n, cfg.layer_dropout, gen).to(x.device)
    picked = torch.randperm(n - 1, generator=gen)[:cfg.early_exit_layers].tolist() if cfg.early_exit_weight else []
    exits: list[torch.Tensor] = []
    hooks = [layers[i].register_forward_hook(lambda m, a, out: exits.append(out[0] if isinstance(out, tuple) else out))
             for i in picked]
    try:
        loss = next_token_loss(model(input_ids=x).logits, x)
    finally:
        for h in hooks:
            h.remove()
        gates.keep = None
    for h in exits:  # the same final norm and LM head the full model uses: that is what an early-exit draft runs
        loss = loss + cfg.early_exit_weight / len(exits) * next_token_loss(model.lm_head(model.model.norm(h)), x)
    return loss


def teacher_kl(model, teacher, x: torch.Tensor, pad: int, exit_layer: int = 0,
               exit_weight: float = 0.0) -> torch.Tensor:
    """KL(teacher || student) of the next-token distributions, averaged over the positions that are not padding;
    with `exit_weight`, plus that weight times the same KL of the LM head read after the first `exit_layer` layers."""
    with torch.no_grad():
        t_logp = F.log_softmax(teacher(input_ids=x).logits.float(), dim=-1)
    keep = x != pad

    def kl(logits: torch.Tensor) -> torch.Tensor:
        s_logp = F.log_softmax(logits.float(), dim=-1)
        return F.kl_div(s_logp, t_logp, log_target=True, reduction="none").sum(-1)[keep].mean()

    if not exit_weight:
        return kl(model(input_ids=x).logits)
    out = model(input_ids=x, output_hidden_states=True)
    early = out.hidden_states[exit_layer]  # [0] is the embeddings, [i] the output of layer i
    return kl(out.logits) + exit_weight * kl(model.lm_head(model.model.norm(early)))
