"""Sequence-level knowledge distillation data (Kim & Rush, EMNLP 2016): the target's own greedy continuations.

A student trained on what the teacher writes, rather than on what people wrote, learns a far less uncertain
distribution: the teacher's greedy continuation is one fixed text per prompt. Non-autoregressive and diffusion
decoders commit several tokens per forward only where they are sure of each, so this is what lets them do it
(NAT and DA-Transformer papers train on distilled data for the same reason); a draft model trained on it agrees
with the target more often, which is all speculative decoding asks of it.

Prompts are cut from the training split (held-out rows, for evaluation, from the held-out split),
`min_prefix`..`max_prefix` tokens long (one length per group, so a group is one rectangular batch), and each gets
`new_tokens` greedy tokens from the teacher, with end-of-text and padding after it where the teacher stops. Cached
under `.cache/`; an interrupted run resumes at its last group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from playground.data import stdlib as data
from playground.models.loading import MODELS_DIR


@dataclass
class DistillConfig:
    teacher: str = "tiny-code"
    rows: int = 8192
    group: int = 128  # rows generated together; they share a prompt length
    new_tokens: int = 128
    min_prefix: int = 16
    max_prefix: int = 128
    seed: int = 4321
    split: str = "train"  # where the prompts come from: "heldout" for the rows a student is evaluated on


@dataclass
class Distilled:
    """Rows of prompt + continuation, right-padded to max_prefix + new_tokens; row i's prompt is prefix[i] long."""
    rows: np.ndarray  # (n, max_prefix + new_tokens) token ids
    prefix: np.ndarray  # (n,) prompt lengths; rows of one group share it
    new_tokens: int
    group: int

    def group_at(self, step: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch` rows of one group chosen by (seed, step), cut to their common length."""
        rng = np.random.default_rng([seed, step])
        g = int(rng.integers(0, len(self.rows) // self.group))
        picks = g * self.group + rng.choice(self.group, size=batch, replace=False)
        rows = self.rows[picks, :int(self.prefix[picks[0]]) + self.new_tokens]
        return torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(self.prefix[picks].astype(np.int64))


def cache_file(cfg: DistillConfig, tokenizer) -> Path:
    return data.CACHE_DIR / f"distill-{cfg.teacher}-{data.cache_key(tokenizer, asdict(cfg))}.npz"


@torch.no_grad()
def teacher_continuations(cfg: DistillConfig, tokenizer, device: torch.device) -> Distilled:
    """The distilled rows of `cfg`, generated (and cached) where not cached yet."""
    from transformers import AutoModelForCausalLM

    path = cache_file(cfg, tokenizer)
    width = cfg.max_prefix + cfg.new_tokens
    rows = np.full((cfg.rows, width), tokenizer.pad_token_id, dtype=np.uint16)
    prefix = np.zeros(cfg.rows, dtype=np.int64)
    done = 0
    if path.exists():
        saved = np.load(path)
        done = int(saved["done"])
        rows[:done], prefix[:done] = saved["rows"][:done], saved["prefix"][:done]
        if done >= cfg.rows:
            return Distilled(rows, prefix, cfg.new_tokens, cfg.group)
    teacher = AutoModelForCausalLM.from_pretrained(MODELS_DIR / cfg.teacher, dtype=torch.float32).to(device).eval()
    tokens = data.token_array(tokenizer, cfg.split)
    bar = tqdm(total=cfg.rows, initial=done, desc=f"{cfg.teacher} greedy continuations", unit="row")
    while done < cfg.rows:
        rng = np.random.default_rng([cfg.seed, done])  # depends on the group only: a resumed run makes the same rows
        p = int(rng.integers(cfg.min_prefix, cfg.max_prefix + 1))
        starts = rng.integers(0, len(tokens) - p, size=cfg.group)
        prompts = torch.from_numpy(np.stack([tokens[s:s + p] for s in starts]).astype(np.int64)).to(device)
        out = teacher.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=False,
                               max_new_tokens=cfg.new_tokens, pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.eos_token_id)
        n = min(cfg.group, cfg.rows - done)
        rows[done:done + n, :out.shape[1]] = out[:n].cpu().numpy()
        prefix[done:done + n] = p
        done += n
        bar.update(n)
        np.savez(path.with_suffix(".tmp.npz"), rows=rows, prefix=prefix, done=done)
        path.with_suffix(".tmp.npz").replace(path)  # atomic: an interrupted save never leaves a broken cache
    bar.close()
    return Distilled(rows, prefix, cfg.new_tokens, cfg.group)
