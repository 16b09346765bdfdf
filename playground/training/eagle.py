"""Train `tiny-code-eagle`, an EAGLE head on tiny-code's features (`python -m playground.training.train eagle`).

The target is frozen; each step it reads a batch of training windows and gives its features f (final normed hidden
states) and its next-token distributions p. The head learns, at every row t, to predict f_t from (f_{t-1}, x_t):

    loss = SmoothL1(f^_t, f_t) + w * CE(p_t, softmax(LMhead(f^_t)))        (EAGLE: regression, plus w = 0.1)

with the target's whole distribution p as the label (what acceptance compares against), and uniform noise on the
input features (EAGLE's data noise, so that the head tolerates its own errors). A second pass feeds the head its own
predictions f^_{t-1} instead of f_{t-1} (a one-step "training-time test" in the manner of EAGLE-3), since every
draft after the first reads them. Resumable (checkpoints/eagle/last.pt every few minutes), tqdm, `--minutes`.

`--distilled` fine-tunes the shipped head on the target's own greedy continuations (`training.distill`, as EAGLE
regenerates its data with the target and FastDraft trains on the target's outputs) in a fraction of the steps: what
a head drafts at inference is the target's greedy text, not people's. Padding after the target stops is not learnt.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground.data import stdlib as data
from playground.models import loading as models
from playground.models.eagle import EagleConfig, EagleHead
from playground.models.lean import rope_table
from playground.training import distill
from playground.training.configs import CKPT_DIR, HELDOUT_DISTILLED
from playground.training.lm import batch_at, eval_windows
from playground.training.loop import save_checkpoint
from playground.training.tokenizer import load_tokenizer


@dataclass
class EagleTrainConfig:
    target: str = "tiny-code"
    name: str = "tiny-code-eagle"
    steps: int = 1500
    batch_size: int = 12
    seq_len: int = 256
    lr: float = 1e-3
    warmup: int = 50
    ce_weight: float = 0.5     # EAGLE uses 0.1 with a 7B target; a small target's argmax is what greedy drafts chase
    noise: float = 0.1         # uniform noise on input features, as a fraction of their standard deviation
    self_fed: float = 1.0      # weight of the second pass on the head's own features (0: plain EAGLE-1)
    eval_every: int = 100
    eval_windows: int = 24
    ckpt_every_s: float = 120.0
    seed: int = 1234
    repeat_fraction: float = 0.0  # plain windows (lm.batch_at reads it)
    minutes: float | None = None
    distilled: float = 0.0     # the fraction of steps on the target's greedy continuations (training.distill)
    init: str | None = None    # start from this shipped head (fine-tuning) instead of random weights

    @property
    def run_name(self) -> str:
        return "eagle-distilled" if self.distilled else "eagle"


def target_view(target_model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen target's features f [b, n, h] and log-probabilities [b, n, vocab] over the windows x [b, n]."""
    with torch.no_grad():
        f = target_model.base_model(input_ids=x).last_hidden_state
        return f, F.log_softmax(target_model.get_output_embeddings()(f).float(), dim=-1)


def head_pass(head: EagleHead, feats_in: torch.Tensor, embeds: torch.Tensor, rope) -> torch.Tensor:
    n = feats_in.shape[1]
    return head(feats_in, embeds, rope[0][:n], rope[1][:n])


def shifted(f: torch.Tensor) -> torch.Tensor:
    """Row t gets row t-1's feature; row 0 gets zeros (no feature before the first token)."""
    return torch.cat([torch.zeros_like(f[:, :1]), f[:, :-1]], dim=1)


def losses(head: EagleHead, target_model, x: torch.Tensor, cfg: EagleTrainConfig, rope,
           gen: torch.Generator | None = None, keep: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The step's losses and the head's top-1 agreement with the target (first pass, and fed its own features),
    over the rows `keep` [b, n] allows (default all)."""
    f, logp = target_view(target_model, x)
    keep = torch.ones(x.shape, dtype=torch.bool) if keep is None else keep
    embeds = target_model.get_input_embeddings()(x).detach()
    lm_head = target_model.get_output_embeddings()
    feats = shifted(f)
    if cfg.noise and head.training:
        feats = feats + (torch.rand(feats.shape, generator=gen) - 0.5) * 2 * cfg.noise * f.std()
    out, agree = {}, {}
    for name, weight in (("real", 1.0), ("own", cfg.self_fed)):
        if weight == 0:
            continue
        pred = head_pass(head, feats, embeds, rope)  # [b, n, h]
        logq = F.log_softmax(lm_head(pred).float(), dim=-1)
        reg = F.smooth_l1_loss(pred[keep], f[keep])
        ce = -(logp.exp() * logq).sum(-1)[keep].mean()
        out[name] = weight * (reg + cfg.ce_weight * ce)
        agree[name] = (logq.argmax(-1) == logp.argmax(-1))[keep].float().mean()
        feats = shifted(pred.detach())  # the second pass reads the head's own predictions
    out["loss"] = sum(out.values())
    out.update({f"agree_{k}": v for k, v in agree.items()})
    return out


@torch.no_grad()
def evaluate(head: EagleHead, target_model, windows: torch.Tensor, cfg: EagleTrainConfig, rope,
             held: distill.Distilled | None = None) -> dict:
    """Held-out losses and agreement on people's code; with `held`, also the agreement on the target's own
    continuations of held-out prompts (`agree_gen`: what drafting at inference meets)."""
    head.eval()
    rows = [losses(head, target_model, windows[i:i + 8], cfg, rope) for i in range(0, len(windows), 8)]
    result = {k: round(float(np.mean([float(r[k]) for r in rows])), 4) for k in rows[0]}
    if held is not None:
        gen = [losses(head, target_model, x, cfg, rope, keep=x != pad_id()) for x in held_batches(held)]
        result["agree_gen"] = round(float(np.mean([float(r["agree_real"]) for r in gen])), 4)
    head.train()
    return result


@functools.cache
def pad_id() -> int:
    return load_tokenizer().pad_token_id


def held_batches(held: distill.Distilled, batch: int = 8) -> list[torch.Tensor]:
    """The held-out continuations (prompt and all), 8 rows at a time, cut to their group's length."""
    out = []
    for g in range(0, len(held.rows), held.group):
        width = int(held.prefix[g]) + held.new_tokens
        out += [torch.from_numpy(held.rows[i:i + batch, :width].astype(np.int64))
                for i in range(g, g + held.group, batch)]
    return out


def step_batch(step: int, cfg: EagleTrainConfig, train: np.ndarray,
               distilled: distill.Distilled | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Step `step`'s rows and the rows that count: the target's continuations in a `distilled` fraction of the
    steps (chosen by seed and step, so a resumed run sees the same batches), training windows else."""
    if distilled is not None and np.random.default_rng([cfg.seed, step, 1]).random() < cfg.distilled:
        x, _ = distilled.group_at(step, cfg.batch_size, cfg.seed)
        return x, x != pad_id()
    return batch_at(train, step, cfg), None


def train_eagle(cfg: EagleTrainConfig) -> Path:
    """Train (or resume) the head; write the model folder with the best held-out agreement. Returns the folder."""
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer()
    target = models.load(cfg.target).model.requires_grad_(False)
    head = EagleHead(EagleConfig.for_target(target.config, cfg.target)).train()
    earlier = None
    if cfg.init:  # fine-tuning: the shipped head's weights, and its training facts for the new card
        head.load_state_dict(models.load(cfg.init).model.state_dict())
        facts = json.loads((models.MODELS_DIR / cfg.init / "training.json").read_text())
        earlier = {k: v for k, v in facts.items() if k not in ("log", "card")}
    rope = rope_table(head.config.lean())
    train, held = data.token_array(tokenizer, "train"), data.token_array(tokenizer, "heldout")
    windows = eval_windows(held, cfg)
    distilled = held_gen = None
    if cfg.distilled:
        distilled = distill.teacher_continuations(distill.DistillConfig(), tokenizer, torch.device("cpu"))
        held_gen = distill.teacher_continuations(HELDOUT_DISTILLED, tokenizer, torch.device("cpu"))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=0.0)
    ckpt = CKPT_DIR / cfg.run_name / "last.pt"
    state = {"step": 0, "elapsed_s": 0.0, "log": [], "best": None}
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        head.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        print(f"resumed at step {state['step']}")
        cfg.steps = min(cfg.steps, state.get("fitted_steps", cfg.steps))
    if earlier is not None and not state["log"]:  # where fine-tuning starts: kept unless a step does better
        row = {"step": 0, **evaluate(head, target, windows, cfg, rope, held_gen)}
        tqdm.write(json.dumps(row))
        state.update(earlier=earlier, log=[row], best={**row, "weights": {k: v.clone() for k, v in
                                                                           head.state_dict().items()}})
    state["resumed_at"] = state["step"]
    state["fitted_at"] = state["step"] + 20
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(range(state["step"], cfg.steps), desc="eagle", initial=state["step"], total=cfg.steps)
    last_ckpt, began, last_start = time.time(), time.time() - state["elapsed_s"], time.time()
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + np.cos(np.pi * step / cfg.steps))
        x, keep = step_batch(step, cfg, train, distilled)
        out = losses(head, target, x, cfg, rope, gen, keep)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        state["step"], state["elapsed_s"] = step + 1, time.time() - began
        bar.set_postfix(loss=f"{out['loss'].item():.3f}", agree=f"{out['agree_real'].item():.2f}")
        if cfg.minutes and step + 1 == state.get("fitted_at", 20):  # cut the schedule to what the budget allows
            per_step = (time.time() - last_start) / (step + 1 - state["resumed_at"])
            cfg.steps = state["fitted_steps"] = min(cfg.steps, step + 1 + int((60 * cfg.minutes - state["elapsed_s"])
                                                                               / per_step))
            bar.total = cfg.steps
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            row = {"step": step + 1, **evaluate(head, target, windows, cfg, rope, held_gen)}
            state["log"].append(row)
            tqdm.write(json.dumps(row))
            kept = "agree_gen" if held_gen is not None else "agree_real"  # what the head is kept for
            if state["best"] is None or row[kept] > state["best"][kept]:
                state["best"] = {**row, "weights": {k: v.clone() for k, v in head.state_dict().items()}}
        if time.time() - last_ckpt > cfg.ckpt_every_s or step + 1 == cfg.steps:
            save_checkpoint(ckpt, head, opt, state)
            last_ckpt = time.time()
        if step + 1 >= cfg.steps:
            break
        if cfg.minutes and state["elapsed_s"] > 60 * cfg.minutes:
            tqdm.write(f"stopping at step {step + 1}: the {cfg.minutes}-minute budget is spent")
            break
    save_checkpoint(ckpt, head, opt, state)
    return save_head(head, tokenizer, cfg, state)


def save_head(head: EagleHead, tokenizer, cfg: EagleTrainConfig, state: dict) -> Path:
    out = models.MODELS_DIR / cfg.name
    best = state["best"] or {}
    if best.get("weights"):
        head.load_state_dict(best["weights"])
    shutil.rmtree(out, ignore_errors=True)
    head.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    facts = {"train_config": asdict(cfg), "steps": state["step"], "kept_step": best.get("step"),
             "tokens_seen": state["step"] * cfg.batch_size * cfg.seq_len, "train_seconds": round(state["elapsed_s"]),
             "threads": torch.get_num_threads(), "log": state["log"],
             "heldout": {k: v for k, v in best.items() if k != "weights"},
             "parameters": sum(p.numel() for p in head.parameters()), "torch": torch.__version__,
             "data": data.token_source(tokenizer, "train"), "earlier_stage": state.get("earlier")}
    (out / "training.json").write_text(json.dumps(facts, indent=2))
    print(f"saved {cfg.name} to {out}")
    return out
