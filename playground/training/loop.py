"""The training loop of the shipped LMs (`train_lm`): a run's parts, its steps, held-out evaluation with early
stopping, resumable checkpoints, and the model folder it ends with.

Training is resumable: a checkpoint is written to checkpoints/<name>/ every `ckpt_every_s` seconds and picked up on
the next start. Data order depends only on (seed, step), so a resumed run sees the same batches as an unbroken one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground.data import corpus
from playground.data import stdlib as data
from playground.models.loading import MODELS_DIR
from playground.training import distill
from playground.training.block import block_heldout_loss, block_loss, build_block_model
from playground.training.configs import CKPT_DIR, HELDOUT_DISTILLED, TrainConfig
from playground.training.diffusion import (
    build_diffusion_model,
    diffusion_batch_at,
    diffusion_heldout_loss,
    diffusion_loss,
    line_break_ids,
)
from playground.training.hardware import autocast, device_name, device_of
from playground.training.lm import (
    batch_at,
    build_model,
    eval_windows,
    heldout_loss,
    layerskip_loss,
    load_first_layers,
    next_token_loss,
    teacher_kl,
)
from playground.training.tokenizer import load_tokenizer

# ---------------------------------------------------------------- schedule, model, batches, held-out loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup` steps, then cosine decay to `min_lr_ratio` x lr at the last step. Reads lr,
    warmup, steps and min_lr_ratio only: train_dag's configs use it too."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_for(cfg: TrainConfig, tokenizer):
    """A new model for cfg, or, for a second stage (cfg.start), the shipped one it continues from."""
    diffusion = cfg.objective in ("diffusion", "block")
    if cfg.start:
        from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
        auto = AutoModelForMaskedLM if diffusion else AutoModelForCausalLM
        return auto.from_pretrained(MODELS_DIR / cfg.start, dtype=torch.float32)
    if cfg.objective == "block":
        return build_block_model(cfg.model, tokenizer, cfg.init, cfg.block_size)
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
    if cfg.objective in ("diffusion", "block"):
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


# ---------------------------------------------------------------- one run


@dataclass
class Run:
    """What every step of one run reads, made by `start_run` in the order that keeps runs reproducible."""
    cfg: TrainConfig
    device: torch.device
    tokenizer: Any
    train_tokens: np.ndarray
    model: Any
    evaluate: Callable[[Any], float]  # the held-out loss early stopping keeps the lowest of
    gen: torch.Generator  # LayerSkip's draws of dropped sub-layers and early exits
    line_ends: np.ndarray | None = None  # diffusion: the line-break tokens a continuation may end at
    distilled: distill.Distilled | None = None  # sequence-level distillation: the teacher's continuations
    teacher: Any = None  # distillation: the model whose next-token distributions the student learns


def start_run(cfg: TrainConfig, dev: torch.device) -> Run:
    """Data, model, evaluation and teacher of a run. Call after torch.manual_seed: the new model's initial weights
    are the first draws."""
    gen = torch.Generator().manual_seed(cfg.seed)
    tokenizer = load_tokenizer()
    train_tokens = (corpus.token_array if cfg.corpus == "corpus" else data.token_array)(tokenizer, "train")
    windows = eval_windows(data.token_array(tokenizer, "heldout"), cfg)
    print(f"{cfg.name}: {len(train_tokens):,} train tokens, {windows.numel():,} held-out eval tokens on {dev}")
    diffusion = cfg.objective in ("diffusion", "block")
    model = build_for(cfg, tokenizer).to(dev)
    line_ends = line_break_ids(tokenizer) if diffusion else None
    held = {"diffusion": diffusion_heldout_loss, "block": block_heldout_loss}.get(cfg.objective)
    evaluate = (lambda m: held(m, windows, tokenizer)) if held else (lambda m: heldout_loss(m, windows))
    distilled = None
    if cfg.distilled:
        distilled = distill.teacher_continuations(distill.DistillConfig(), tokenizer, dev)
        held = distill.teacher_continuations(HELDOUT_DISTILLED, tokenizer, dev)
        evaluate = lambda m: distilled_heldout_loss(m, held, tokenizer, diffusion)  # noqa: E731
    teacher = None
    if cfg.teacher:
        from transformers import AutoModelForCausalLM
        teacher = AutoModelForCausalLM.from_pretrained(MODELS_DIR / cfg.teacher, dtype=torch.float32).to(dev).eval()
    return Run(cfg, dev, tokenizer, train_tokens, model, evaluate, gen, line_ends, distilled, teacher)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only, not on the norms' gains."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def resume(path: Path, model, opt, cfg: TrainConfig, dev: torch.device, train_tokens: int) -> dict:
    """The run's state: a fresh one, or the checkpoint's at `path`, whose weights and optimiser state go into
    `model` and `opt` and whose step count (which --minutes may have cut) replaces cfg's."""
    state = {"step": 0, "elapsed_s": 0.0, "log": [], "train_tokens": train_tokens}
    if path.exists():
        ckpt = torch.load(path, weights_only=False, map_location=dev)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        state = ckpt["state"]
        cfg.steps = state.get("steps", cfg.steps)
        print(f"resumed {cfg.name} at step {state['step']} of {cfg.steps}")
    return state


# ---------------------------------------------------------------- steps


def step_loss(run: Run, x: torch.Tensor, prefix: torch.Tensor | None, step: int) -> torch.Tensor:
    """The loss of the run's objective on batch x: masked diffusion, KL to a teacher, LayerSkip or next token."""
    cfg, model = run.cfg, run.model
    with autocast(run.device):
        if cfg.objective == "block":
            noise = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            return block_loss(model, x, prefix, run.tokenizer.mask_token_id, noise)
        if cfg.objective == "diffusion":
            noise = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # resumable: depends on step only
            return diffusion_loss(model, x, prefix, run.tokenizer.mask_token_id, noise)
        if run.teacher is not None:
            return teacher_kl(model, run.teacher, x, run.tokenizer.pad_token_id, cfg.exit_layer, cfg.exit_weight)
        if cfg.layer_dropout or cfg.early_exit_weight:
            return layerskip_loss(model, x, cfg, run.gen)
        return next_token_loss(model(input_ids=x).logits, x)


def train_step(run: Run, opt, step: int) -> torch.Tensor:
    """One optimiser step on step `step`'s batch at its learning rate; the batch's loss."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, run.cfg)
    x, prefix = training_batch(step, run.cfg, run.train_tokens, run.distilled, run.tokenizer, run.line_ends)
    loss = step_loss(run, x.to(run.device), prefix, step)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def fit_to_budget(cfg: TrainConfig, state: dict, step: int, per_step: float, bar: tqdm) -> None:
    """Cut cfg.steps to what is left of the wall-clock budget `cfg.minutes` at `per_step` seconds a step."""
    cfg.steps = min(cfg.steps, step + int((cfg.minutes * 60 - state["elapsed_s"]) / per_step))
    bar.total = cfg.steps
    tqdm.write(f"{per_step * 1000:.0f} ms/step: {cfg.steps} steps fit in {cfg.minutes} minutes")


def evaluate(run: Run, state: dict, train_loss: float) -> None:
    """Log the held-out loss at the state's step; with keep_best, keep a copy of the weights when none was lower."""
    ev = run.evaluate(run.model)
    state["log"].append({"step": state["step"], "train_loss": train_loss, "heldout_loss": ev})
    tqdm.write(f"step {state['step']}: train {train_loss:.3f}  held-out CE {ev:.3f} nats/token")
    if run.cfg.keep_best and ev <= min(e["heldout_loss"] for e in state["log"]):
        state["best"] = {"step": state["step"], "heldout_loss": ev,
                         "model": {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}}


def train_lm(cfg: TrainConfig, device: str = "cpu") -> None:
    """Next-token training (or distillation when cfg.teacher is set), checkpointed and resumable."""
    torch.manual_seed(cfg.seed)
    run = start_run(cfg, torch.device(device))
    model, opt = run.model, make_optimizer(run.model, cfg)
    ckpt_path = checkpoint_path(cfg)
    state = resume(ckpt_path, model, opt, cfg, run.device, len(run.train_tokens))
    model.train()
    bar = tqdm(range(state["step"], cfg.steps), initial=state["step"], total=cfg.steps, desc=cfg.name)
    t_last = t_saved = time.time()
    t_first, first = None, state["step"]
    for step in bar:
        if step >= cfg.steps:  # --minutes cut the schedule
            break
        loss = train_step(run, opt, step)
        if step == first + 5:
            t_first = time.time()
        if cfg.minutes and step == first + 25 and t_first:  # fit the schedule to the wall-clock budget
            fit_to_budget(cfg, state, step, (time.time() - t_first) / 20, bar)
        now = time.time()
        state["elapsed_s"] += now - t_last
        t_last = now
        state["step"], state["steps"] = step + 1, cfg.steps
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, cfg):.1e}")
        done = state["step"] == cfg.steps
        if state["step"] % cfg.eval_every == 0 or done:
            evaluate(run, state, loss.item())
        if time.time() - t_saved > cfg.ckpt_every_s or done:
            save_checkpoint(ckpt_path, model, opt, state)
            t_last = t_saved = time.time()
        if done:
            break
    model = model.cpu()
    if cfg.keep_best and state.get("best"):
        model.load_state_dict(state["best"]["model"])
        tqdm.write(f"kept the weights of step {state['best']['step']} (held-out {state['best']['heldout_loss']:.3f})")
    save_model(model, run.tokenizer, cfg, state)


# ---------------------------------------------------------------- what a run leaves


def checkpoint_path(cfg: TrainConfig) -> Path:
    return CKPT_DIR / (cfg.name + ("-distilled" if cfg.distilled else "")) / "last.pt"


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
