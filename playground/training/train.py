"""Train the shipped tiny models on the Python standard library of the running interpreter.

    python -m playground.training.train tokenizer            # byte-level BPE, shared by every shipped model
    python -m playground.training.train target [--steps N]   # Llama-style causal LM -> assets/models/tiny-code
    python -m playground.training.train draft  [--steps N]   # 2-layer draft distilled from the target -> tiny-code-draft
    python -m playground.training.train diffusion            # masked-diffusion EuroBERT for completion -> tiny-code-diffusion
    python -m playground.training.train corpus [--pack F]    # stdlib + pinned PyPI packages, tokenized (playground.corpus)
    python -m playground.training.train diffusion-corpus     # the diffusion model on that corpus, sized for a GPU
    python -m playground.training.train distill              # tiny-code's greedy continuations of training prompts (.cache/)
    python -m playground.training.train diffusion-distilled  # second stage: the diffusion model, trained on them
    python -m playground.training.train draft-distilled      # second stage: the draft, distilled on them
    python -m playground.training.train deep                 # 24 x 128 target distilled from tiny-code -> tiny-code-deep
    python -m playground.training.train deep-draft           # its 2-layer draft, cut from it and distilled
    python -m playground.training.train prompts              # held-out prompt suites -> assets/prompts/*.jsonl
    python -m playground.training.train card [--only causal|diffusion]  # evaluate the models and write their model cards

Training is resumable: a checkpoint is written to checkpoints/<name>/ every `ckpt_every_s` seconds and picked up on the
next start. Data order depends only on (seed, step), so a resumed run sees the same batches as an unbroken one.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground.data import corpus
from playground.data import stdlib as data
from playground.models.loading import ASSETS, MODELS_DIR
from playground.runtime.sublayers import Gates, decoder_layers, layer_dropout_mask
from playground.training import distill

TOKENIZER_DIR = ASSETS / "tokenizer"
CKPT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|mask|>"]


@dataclass
class TokenizerConfig:
    vocab_size: int = 4096
    min_frequency: int = 2


@dataclass
class ModelConfig:
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 704
    max_position_embeddings: int = 1024


@dataclass
class TrainConfig:
    name: str = "tiny-code"
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 512
    batch_size: int = 6
    steps: int = 480
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 60
    weight_decay: float = 0.1
    ckpt_every_s: float = 120.0
    eval_every: int = 200
    eval_windows: int = 48
    seed: int = 1234
    teacher: str | None = None  # set for distillation: the draft learns the teacher's next-token distributions
    # LayerSkip (arXiv 2404.16710): per-sample sub-layer dropout rising to `layer_dropout` at the last layer, plus
    # the LM head's loss on the output of `early_exit_layers` random intermediate layers per step, so that drafts
    # made by skipping layers (self_speculative, early_exit) agree with the full model more often.
    layer_dropout: float = 0.0
    early_exit_weight: float = 0.0
    early_exit_layers: int = 2
    repeat_fraction: float = 0.0  # windows that end by repeating their own last stretch (see batch_at)
    minutes: float | None = None  # wall-clock budget: cut `steps` to what fits, measured over the first steps
    keep_best: bool = True  # early stopping: end with the weights of the evaluation with the lowest held-out loss
    objective: str = "next_token"  # or "diffusion": masked diffusion (LLaDA / MDLM) on a bidirectional encoder
    min_prefix: int = 16  # diffusion: the prompt part of a window, never masked, is min_prefix..max_prefix tokens
    max_prefix: int = 128
    end_fraction: float = 0.3  # diffusion: windows whose continuation ends early at a line end (see diffusion_batch_at)
    init: str | None = None  # diffusion: start from this shipped causal LM (see build_diffusion_model)
    start: str | None = None  # continue from all the weights of this shipped model (a second training stage)
    # Distillation only: also train the LM head read after the first `exit_layer` layers (weight `exit_weight`), so
    # that those layers, cut off as a model of their own, start as a draft that already agrees with the full model.
    exit_layer: int = 0
    exit_weight: float = 0.0
    # Sequence-level distillation (playground/distill.py): train on the teacher's greedy continuations instead of
    # the stdlib text, but for a `natural_fraction` of the steps, and keep the weights that do best on held-out
    # continuations.
    distilled: bool = False
    natural_fraction: float = 0.25
    corpus: str = "stdlib"  # or "corpus": the standard library plus the packages of playground.corpus


TARGET = TrainConfig(batch_size=48, steps=3600, warmup=100, layer_dropout=0.2, early_exit_weight=0.3,
                     repeat_fraction=0.25)
DRAFT = TrainConfig(
    name="tiny-code-draft",
    # On a CPU at batch size 1 a layer's cost is mostly fixed overhead, not width: 2 full-width layers cost about
    # a fifth of the 12-layer target and agree with it far more often than 1 narrow layer.
    model=ModelConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=704),
    batch_size=48, steps=3000, lr=3e-3, warmup=100, teacher="tiny-code", repeat_fraction=0.25,
)
DIFFUSION = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion",
    model=ModelConfig(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=704,
                      max_position_embeddings=1024),
    seq_len=256, batch_size=32, steps=2400, lr=5e-4, warmup=50, eval_every=100, init="tiny-code", end_fraction=0.05,
)
# The same model trained with a GPU's compute on the larger corpus: 8x the batch, the schedule cut by --minutes.
DIFFUSION_CORPUS = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion", model=DIFFUSION.model, corpus="corpus",
    seq_len=256, batch_size=256, steps=40000, lr=1e-3, warmup=200, eval_every=500, init="tiny-code",
    end_fraction=0.05, ckpt_every_s=60.0,
)

DIFFUSION_DISTILLED = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion", model=DIFFUSION.model, start="tiny-code-diffusion",
    distilled=True, seq_len=256, batch_size=32, steps=900, lr=3e-4, warmup=20, eval_every=100, end_fraction=0.05,
)
DRAFT_DISTILLED = TrainConfig(
    name="tiny-code-draft", model=DRAFT.model, start="tiny-code-draft", teacher="tiny-code", distilled=True,
    seq_len=256, batch_size=32, steps=200, lr=5e-4, warmup=20, eval_every=50, repeat_fraction=0.25,
)
HELDOUT_DISTILLED = distill.DistillConfig(rows=256, group=32, split="heldout")

# A deep, narrow target and its draft. On a CPU at batch size 1 a forward's cost is mostly fixed work per layer, not
# arithmetic, so a 24 x 128 target costs about what the 12 x 256 one does per token, but scores a 16-node tree for
# 1.4x one token (1.7x for tiny-code), and a 2 x 128 draft costs a tenth of it (docs/BENCHMARKS.md, "A deep, narrow
# pair, trained"): the shape that should favour draft trees on this hardware. The target learns tiny-code's
# next-token distributions (KL, which teaches a small student faster than the text alone on a CPU budget) and
# those of an early exit after 2 layers; the draft starts as those 2 layers and learns the deep target's.
DEEP = TrainConfig(
    name="tiny-code-deep", model=ModelConfig(hidden_size=128, num_hidden_layers=24, num_attention_heads=4,
                                             intermediate_size=352),
    teacher="tiny-code", exit_layer=2, exit_weight=0.5, batch_size=8, steps=1750, lr=2e-3, warmup=100,
    repeat_fraction=0.25, ckpt_every_s=300.0,
)
DEEP_DRAFT = TrainConfig(
    name="tiny-code-deep-draft", model=ModelConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                                   intermediate_size=352),
    init="tiny-code-deep", teacher="tiny-code-deep", batch_size=16, steps=492, lr=1e-3, warmup=20,
    repeat_fraction=0.25, ckpt_every_s=300.0,
)


def checkpoint_path(cfg: TrainConfig) -> Path:
    return CKPT_DIR / (cfg.name + ("-distilled" if cfg.distilled else "")) / "last.pt"


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def autocast(device: torch.device):
    """bf16 autocast where the hardware has bf16 arithmetic (GPUs; CPUs with AVX512-BF16 or AMX, where it trains
    1.4-2.7x faster). Without it bf16 is emulated: 3x slower than fp32 on the AVX-512 dev machine."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=has_bf16(device))


@functools.cache
def has_bf16(device: torch.device) -> bool:
    if device.type != "cpu":
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ---------------------------------------------------------------- tokenizer

def train_tokenizer(cfg: TokenizerConfig) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True,
    )
    texts = (t for t in map(data.read_source, data.stdlib_files("train")) if t)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|pad|>",
        mask_token="<|mask|>", unk_token=None, clean_up_tokenization_spaces=False,
    )
    fast.model_max_length = ModelConfig.max_position_embeddings
    fast.save_pretrained(TOKENIZER_DIR)
    print(f"tokenizer with {len(fast)} tokens saved to {TOKENIZER_DIR}")


def load_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


# ---------------------------------------------------------------- models

def build_model(cfg: ModelConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


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


# ---------------------------------------------------------------- masked diffusion

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


def load_first_layers(model, source: str) -> None:
    """Start `model` from the shipped causal LM `source` of the same width: its embeddings, its first layers (as
    many as `model` has) and its final norm (the names match: model.embed_tokens, model.layers.N..., model.norm)."""
    from transformers import AutoModelForCausalLM
    weights = AutoModelForCausalLM.from_pretrained(MODELS_DIR / source, dtype=torch.float32).state_dict()
    n = model.config.num_hidden_layers
    kept = {k: v for k, v in weights.items() if not k.startswith("model.layers.") or int(k.split(".")[2]) < n}
    model.load_state_dict(kept, strict=False)
    model.tie_weights()


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
def diffusion_heldout_loss(model, windows: torch.Tensor, tokenizer, batch: int = 8) -> float:
    """The diffusion loss on the held-out windows, each with a 64-token prompt, under fixed noise draws."""
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
            total += diffusion_loss(model, x.to(device), prefix[:len(x)], tokenizer.mask_token_id, gen).item() * len(x)
    model.train()
    return total / len(windows)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


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


def build_for(cfg: TrainConfig, tokenizer):
    """A new model for cfg, or, for a second stage (cfg.start), the shipped one it continues from."""
    diffusion = cfg.objective == "diffusion"
    if cfg.start:
        from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
        auto = AutoModelForMaskedLM if diffusion else AutoModelForCausalLM
        return auto.from_pretrained(MODELS_DIR / cfg.start, dtype=torch.float32)
    if diffusion:
        return build_diffusion_model(cfg.model, tokenizer, cfg.init)
    model = build_model(cfg.model, tokenizer)
    if cfg.init:  # a draft cut from the first layers of its target
        load_first_layers(model, cfg.init)
    return model


def training_batch(step: int, cfg: TrainConfig, tokens: np.ndarray, distilled: distill.Distilled | None, tokenizer,
                   line_ends: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Step `step`'s rows and (for diffusion) their prompt lengths: distilled rows, or stdlib windows without
    distillation and in a `natural_fraction` of the distilled steps."""
    if distilled is not None and np.random.default_rng([cfg.seed, step, 1]).random() >= cfg.natural_fraction:
        return distilled.group_at(step, cfg.batch_size, cfg.seed)
    if cfg.objective == "diffusion":
        return diffusion_batch_at(tokens, step, cfg, tokenizer, line_ends)
    return batch_at(tokens, step, cfg), None


@torch.no_grad()
def distilled_heldout_loss(model, held: distill.Distilled, tokenizer, diffusion: bool) -> float:
    """Loss on the teacher's continuations of held-out prompts, one group at a time: the diffusion loss, or the
    next-token cross-entropy of the continuation (the tokens a draft has to guess), in nats per token."""
    model.eval()
    gen, device, losses = torch.Generator().manual_seed(0), device_of(model), []
    for g in range(0, len(held.rows), held.group):
        p = int(held.prefix[g])
        x = torch.from_numpy(held.rows[g:g + held.group, :p + held.new_tokens].astype(np.int64)).to(device)
        with autocast(device):
            if diffusion:
                prefix = torch.full((len(x),), p)
                losses.append(diffusion_loss(model, x, prefix, tokenizer.mask_token_id, gen).item())
                continue
            logits, target = model(input_ids=x).logits[:, p - 1:-1].float(), x[:, p:]
            keep = target != tokenizer.pad_token_id
            losses.append(F.cross_entropy(logits[keep], target[keep]).item())
    model.train()
    return float(np.mean(losses))


def train_lm(cfg: TrainConfig, device: str = "cpu") -> None:
    """Next-token training (or distillation when cfg.teacher is set), checkpointed and resumable."""
    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    tokenizer = load_tokenizer()
    train_tokens = (corpus.token_array if cfg.corpus == "corpus" else data.token_array)(tokenizer, "train")
    windows = eval_windows(data.token_array(tokenizer, "heldout"), cfg)
    print(f"{cfg.name}: {len(train_tokens):,} train tokens, {windows.numel():,} held-out eval tokens on {dev}")
    diffusion = cfg.objective == "diffusion"
    model = build_for(cfg, tokenizer).to(dev)
    line_ends = line_break_ids(tokenizer) if diffusion else None
    evaluate = (lambda m: diffusion_heldout_loss(m, windows, tokenizer)) if diffusion else (
        lambda m: heldout_loss(m, windows))
    distilled = None
    if cfg.distilled:
        distilled = distill.teacher_continuations(distill.DistillConfig(), tokenizer, dev)
        held = distill.teacher_continuations(HELDOUT_DISTILLED, tokenizer, dev)
        evaluate = lambda m: distilled_heldout_loss(m, held, tokenizer, diffusion)  # noqa: E731
    teacher = None
    if cfg.teacher:
        from transformers import AutoModelForCausalLM
        teacher = AutoModelForCausalLM.from_pretrained(MODELS_DIR / cfg.teacher, dtype=torch.float32).to(dev).eval()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    ckpt_path = checkpoint_path(cfg)
    state = {"step": 0, "elapsed_s": 0.0, "log": [], "train_tokens": len(train_tokens)}
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False, map_location=dev)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        state = ckpt["state"]
        cfg.steps = state.get("steps", cfg.steps)
        print(f"resumed {cfg.name} at step {state['step']} of {cfg.steps}")
    model.train()
    bar = tqdm(range(state["step"], cfg.steps), initial=state["step"], total=cfg.steps, desc=cfg.name)
    t_last = t_saved = time.time()
    t_first, first = None, state["step"]
    for step in bar:
        if step >= cfg.steps:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, prefix = training_batch(step, cfg, train_tokens, distilled, tokenizer, line_ends)
        x = x.to(dev)
        with autocast(dev):
            if diffusion:
                noise = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # resumable: depends on step only
                loss = diffusion_loss(model, x, prefix, tokenizer.mask_token_id, noise)
            elif teacher is not None:
                loss = teacher_kl(model, teacher, x, tokenizer.pad_token_id, cfg.exit_layer, cfg.exit_weight)
            elif cfg.layer_dropout or cfg.early_exit_weight:
                loss = layerskip_loss(model, x, cfg, gen)
            else:
                loss = next_token_loss(model(input_ids=x).logits, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == first + 5:
            t_first = time.time()
        if cfg.minutes and step == first + 25 and t_first:  # fit the schedule to the wall-clock budget
            per_step = (time.time() - t_first) / 20
            cfg.steps = min(cfg.steps, step + int((cfg.minutes * 60 - state["elapsed_s"]) / per_step))
            bar.total = cfg.steps
            tqdm.write(f"{per_step * 1000:.0f} ms/step: {cfg.steps} steps fit in {cfg.minutes} minutes")
        now = time.time()
        state["elapsed_s"] += now - t_last
        t_last = now
        state["step"], state["steps"] = step + 1, cfg.steps
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, cfg):.1e}")
        done = state["step"] == cfg.steps
        if state["step"] % cfg.eval_every == 0 or done:
            ev = evaluate(model)
            state["log"].append({"step": state["step"], "train_loss": loss.item(), "heldout_loss": ev})
            tqdm.write(f"step {state['step']}: train {loss.item():.3f}  held-out CE {ev:.3f} nats/token")
            if cfg.keep_best and ev <= min(e["heldout_loss"] for e in state["log"]):
                state["best"] = {"step": state["step"], "heldout_loss": ev,
                                 "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        if time.time() - t_saved > cfg.ckpt_every_s or done:
            save_checkpoint(ckpt_path, model, opt, state)
            t_last = t_saved = time.time()
        if done:
            break
    model = model.cpu()
    if cfg.keep_best and state.get("best"):
        model.load_state_dict(state["best"]["model"])
        tqdm.write(f"kept the weights of step {state['best']['step']} (held-out {state['best']['heldout_loss']:.3f})")
    save_model(model, tokenizer, cfg, state)


def save_checkpoint(path: Path, model, opt, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def save_model(model, tokenizer, cfg: TrainConfig, state: dict) -> None:
    out = MODELS_DIR / cfg.name
    earlier = json.loads((out / "training.json").read_text()) if cfg.start else None  # the stage this one follows
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    tokens_seen = state["step"] * cfg.batch_size * cfg.seq_len
    best = state.get("best") or {}
    facts = {"train_config": asdict(cfg), "steps": state["step"], "tokens_seen": tokens_seen, "device": device_name(),
             "kept_step": best.get("step", state["step"]),
             "train_seconds": round(state["elapsed_s"]), "log": state["log"],
             "heldout_loss": best.get("heldout_loss", state["log"][-1]["heldout_loss"] if state["log"] else None),
             "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
             "train_tokens": state.get("train_tokens"), **data_facts(tokenizer, cfg),
             "distilled": asdict(distill.DistillConfig()) if cfg.distilled else None, "earlier_stage": earlier}
    (out / "training.json").write_text(json.dumps(facts, indent=2))
    print(f"saved {cfg.name} to {out}")


def data_facts(tokenizer, cfg: TrainConfig) -> dict:
    """Where the training tokens came from: the standard library's cache note (of the machine that tokenized it,
    which for a packed corpus is not the machine that trained), and the corpus manifest when there is one."""
    note = corpus.manifest(tokenizer) if cfg.corpus == "corpus" else None
    return {"data": note["stdlib"]["train"] if note else data.token_source(tokenizer, "train"), "corpus": note}


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"


def build_corpus(pack: Path | None, unpack: Path | None) -> None:
    tokenizer = load_tokenizer()
    if unpack:
        corpus.unpack(tokenizer, unpack)
    note = corpus.manifest(tokenizer) or corpus.build(tokenizer)
    for row in note["packages"]:
        print(f"{row['name']:>16} {row['version']:<10} {row['licence']:<28} {row['train_files']:>5} + "
              f"{row['heldout_files']:>4} files  {row['train_tokens']:>10,} + {row['heldout_tokens']:>9,} tokens")
    print(f"train {note['train_tokens']:,} tokens, held-out {note.get('heldout_tokens', 0):,} (standard library "
          f"and packages together)")
    if pack:
        print(f"packed to {corpus.pack(tokenizer, pack)} ({pack.stat().st_size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m playground.training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["tokenizer", "target", "draft", "diffusion", "diffusion-corpus", "corpus",
                                           "distill",
                                           "draft-distilled", "diffusion-distilled", "deep", "deep-draft", "prompts",
                                           "card"])
    parser.add_argument("--steps", type=int, help="total optimiser steps (default: the config's)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the config's)")
    parser.add_argument("--minutes", type=float, help="wall-clock budget; steps are cut to what fits")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pack", type=Path, help="corpus: also write what training elsewhere needs to this file")
    parser.add_argument("--unpack", type=Path, help="corpus: restore a packed corpus under .cache/ instead")
    parser.add_argument("--only", choices=["causal", "diffusion"],
                        help="card: only the causal models' cards (tiny-code, tiny-code-draft) or the diffusion one's")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    if args.what == "tokenizer":
        train_tokenizer(TokenizerConfig())
        return
    if args.what == "corpus":
        build_corpus(args.pack, args.unpack)
        return
    if args.what == "distill":
        distill.teacher_continuations(distill.DistillConfig(), load_tokenizer(), torch.device(args.device))
        return
    if args.what in ("prompts", "card"):
        from playground.training import cards
        if args.what == "prompts":
            cards.write_prompts()
        if args.what == "card" and args.only != "diffusion":
            cards.write_cards()
        if args.what == "card" and args.only != "causal":
            cards.write_diffusion_card()
        return
    cfg = {"target": TARGET, "draft": DRAFT, "diffusion": DIFFUSION, "diffusion-corpus": DIFFUSION_CORPUS,
           "draft-distilled": DRAFT_DISTILLED,
           "diffusion-distilled": DIFFUSION_DISTILLED, "deep": DEEP, "deep-draft": DEEP_DRAFT}[args.what]
    cfg.steps = args.steps or cfg.steps
    cfg.batch_size = args.batch_size or cfg.batch_size
    cfg.minutes = args.minutes
    if args.fresh:
        shutil.rmtree(checkpoint_path(cfg).parent, ignore_errors=True)
    train_lm(cfg, args.device)


if __name__ == "__main__":
    main()
