"""Train the shipped tiny models on the Python standard library of the running interpreter.

    python -m playground.train tokenizer            # byte-level BPE, shared by every shipped model
    python -m playground.train target [--steps N]   # Llama-style causal LM -> assets/models/tiny-code
    python -m playground.train draft  [--steps N]   # 1-layer draft distilled from the target -> tiny-code-draft
    python -m playground.train prompts              # held-out prompt suite -> assets/prompts/complete.jsonl
    python -m playground.train card                 # evaluate both and write their model cards

Training is resumable: a checkpoint is written to checkpoints/<name>/ every `ckpt_every` steps and picked up on the
next start. Data order depends only on (seed, step), so a resumed run sees the same batches as an unbroken one.
"""

from __future__ import annotations

import argparse
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

from playground import data
from playground.models import ASSETS, MODELS_DIR

TOKENIZER_DIR = ASSETS / "tokenizer"
CKPT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|mask|>"]


@dataclass
class TokenizerConfig:
    vocab_size: int = 4096
    min_frequency: int = 2


@dataclass
class ModelConfig:
    hidden_size: int = 256
    num_hidden_layers: int = 8
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
    ckpt_every: int = 25
    eval_every: int = 200
    eval_windows: int = 48
    seed: int = 1234
    teacher: str | None = None  # set for distillation: the draft learns the teacher's next-token distributions


TARGET = TrainConfig()
DRAFT = TrainConfig(
    name="tiny-code-draft",
    model=ModelConfig(hidden_size=128, num_hidden_layers=1, num_attention_heads=2, intermediate_size=384),
    batch_size=8, steps=600, lr=3e-3, teacher="tiny-code",
)


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
    """The batch of step `step`: random windows drawn from a generator seeded by (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step])
    starts = rng.integers(0, len(tokens) - cfg.seq_len - 1, size=cfg.batch_size)
    return torch.from_numpy(np.stack([tokens[s:s + cfg.seq_len] for s in starts]).astype(np.int64))


def eval_windows(tokens: np.ndarray, cfg: TrainConfig) -> torch.Tensor:
    """Fixed, evenly spaced held-out windows: the same for every model, so losses compare."""
    starts = np.linspace(0, len(tokens) - cfg.seq_len - 1, cfg.eval_windows).astype(np.int64)
    return torch.from_numpy(np.stack([tokens[s:s + cfg.seq_len] for s in starts]).astype(np.int64))


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, batch: int = 8) -> float:
    """Mean next-token cross-entropy on the held-out windows, in nats per token."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x = windows[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits.float()
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum")
        total, count = total + loss.item(), count + x[:, 1:].numel()
    model.train()
    return total / count


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_lm(cfg: TrainConfig) -> None:
    """Next-token training (or distillation when cfg.teacher is set), checkpointed and resumable."""
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer()
    train_tokens = data.token_array(tokenizer, "train")
    windows = eval_windows(data.token_array(tokenizer, "heldout"), cfg)
    print(f"{cfg.name}: {len(train_tokens):,} train tokens, {windows.numel():,} held-out eval tokens")
    model = build_model(cfg.model, tokenizer)
    teacher = None
    if cfg.teacher:
        from transformers import AutoModelForCausalLM
        teacher = AutoModelForCausalLM.from_pretrained(MODELS_DIR / cfg.teacher, dtype=torch.float32).eval()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    ckpt_path = CKPT_DIR / cfg.name / "last.pt"
    state = {"step": 0, "elapsed_s": 0.0, "log": []}
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        state = ckpt["state"]
        print(f"resumed {cfg.name} at step {state['step']}")
    model.train()
    bar = tqdm(range(state["step"], cfg.steps), initial=state["step"], total=cfg.steps, desc=cfg.name)
    t_last = time.time()
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = batch_at(train_tokens, step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits.float()
            if teacher is None:
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
            else:
                with torch.no_grad():
                    t_logp = F.log_softmax(teacher(input_ids=x).logits.float(), dim=-1)
                s_logp = F.log_softmax(logits, dim=-1)
                loss = F.kl_div(s_logp, t_logp, log_target=True, reduction="none").sum(-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        now = time.time()
        state["elapsed_s"] += now - t_last
        t_last = now
        state["step"] = step + 1
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, cfg):.1e}")
        done = state["step"] == cfg.steps
        if state["step"] % cfg.eval_every == 0 or done:
            ev = heldout_loss(model, windows)
            state["log"].append({"step": state["step"], "train_loss": loss.item(), "heldout_loss": ev})
            tqdm.write(f"step {state['step']}: train {loss.item():.3f}  held-out CE {ev:.3f} nats/token")
        if state["step"] % cfg.ckpt_every == 0 or done:
            save_checkpoint(ckpt_path, model, opt, state)
            t_last = time.time()
    save_model(model, tokenizer, cfg, state)


def save_checkpoint(path: Path, model, opt, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def save_model(model, tokenizer, cfg: TrainConfig, state: dict) -> None:
    out = MODELS_DIR / cfg.name
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    tokens_seen = state["step"] * cfg.batch_size * cfg.seq_len
    facts = {"train_config": asdict(cfg), "steps": state["step"], "tokens_seen": tokens_seen,
             "train_seconds": round(state["elapsed_s"]), "log": state["log"],
             "heldout_loss": state["log"][-1]["heldout_loss"] if state["log"] else None,
             "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
             "python_stdlib": str(data.stdlib_root())}
    (out / "training.json").write_text(json.dumps(facts, indent=2))
    print(f"saved {cfg.name} to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m playground.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["tokenizer", "target", "draft", "prompts", "card"])
    parser.add_argument("--steps", type=int, help="total optimiser steps (default: the config's)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    if args.what == "tokenizer":
        train_tokenizer(TokenizerConfig())
        return
    if args.what in ("prompts", "card"):
        from playground import cards
        cards.write_prompts() if args.what == "prompts" else cards.write_cards()
        return
    cfg = TARGET if args.what == "target" else DRAFT
    if args.steps:
        cfg.steps = args.steps
    if args.fresh:
        shutil.rmtree(CKPT_DIR / cfg.name, ignore_errors=True)
    train_lm(cfg)


if __name__ == "__main__":
    main()
