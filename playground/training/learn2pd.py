"""Train Learn2PD's filter (models/unmask_filter.py) for a diffusion model, on that model's own trajectories.

1. Trajectories: the model decodes prompts cut from *training* files the slow way, one token per forward (the most
   confident first, block by block, prefix cache: the slow side of the Diffusion tab). At every forward each masked
   position of the block gives one example: its features (methods/unmask_filter.py) and whether its current guess is
   the token it finally got. That label is Learn2PD's oracle: unmasking exactly the positions where it is 1 would
   reproduce the slow output in fewer forwards.
2. The filter, an 11 -> 32 -> 32 -> 1 network, learns the label by binary cross-entropy (Adam, full batch), a tenth of
   the prompts held out to measure it.
3. Saved beside the model's weights, with how it compares on the held-out positions with Fast-dLLM's confidence
   threshold at the same level: precision (of the positions committed, the share whose guess was final) and recall
   (of the final guesses, the share committed).

    python -m playground.training.train learn2pd                    # for tiny-code-diffusion
    python -m playground.training.train learn2pd --model tiny-code-block
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground.data.stdlib import heldout_prompts
from playground.methods.diffusion import by_confidence
from playground.methods.unmask_filter import features
from playground.models import loading
from playground.models.unmask_filter import UnmaskFilter
from playground.runtime.canvas import Canvas, Denoiser
from playground.runtime.lean_masked import lean_masked, supports
from playground.runtime.sampling import Sampling


@dataclass
class FilterConfig:
    model: str = "tiny-code-diffusion"
    prompts: int = 240          # cut from training files; a tenth held out
    new_tokens: int = 64
    block: int = 32
    hidden: int = 32
    steps: int = 1500           # full-batch Adam steps
    lr: float = 3e-3
    level: float = 0.9          # the level the card compares at
    seed: int = 0


def trajectory(den: Denoiser, prompt_ids: list[int], cfg: FilterConfig, mask_id: int, eos_id: int | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of every (forward, masked position) of one slow decoding."""
    canvas = Canvas.new(prompt_ids, cfg.new_tokens, mask_id, cfg.block)
    rows, guesses = [], []  # per forward: features [n, F], (positions, guessed tokens)
    for lo, hi in canvas.blocks():
        for k in range(hi - lo):
            masked = canvas.masked(lo, hi)
            if not masked:
                break
            pred = den.predict(canvas.ids[None], canvas.prompt_len, lo, hi, refresh=k == 0)
            rows.append(features(canvas, masked, pred, lo, hi, eos_id))
            guesses.append((masked, [int(pred.token[0, i - lo]) for i in masked]))
            canvas.note_guesses(lo, pred.token[0], pred.conf[0])  # as make_step does: the next forward's "before"
            top = by_confidence(masked, pred)[0]
            canvas.commit([top], [int(pred.token[0, top - lo])], [float(pred.conf[0, top - lo])], len(rows))
    final = canvas.guess
    labels = [float(t == final[i]) for positions, tokens in guesses for i, t in zip(positions, tokens)]
    return torch.cat(rows), torch.tensor(labels)


def precision_recall(chosen: torch.Tensor, labels: torch.Tensor) -> dict:
    hits = float((chosen & labels.bool()).sum())
    return {"precision": hits / max(1.0, float(chosen.sum())), "recall": hits / max(1.0, float(labels.sum())),
            "committed_share": float(chosen.float().mean())}


def train_filter(cfg: FilterConfig) -> dict:
    torch.manual_seed(cfg.seed)
    loaded = loading.load(cfg.model)
    model = lean_masked(loaded.model) if supports(loaded.model) is None else loaded.model
    tok = loaded.tokenizer
    den = Denoiser(model, "prefix", Sampling())
    prompts = heldout_prompts(tok, cfg.prompts, prompt_tokens=64, seed=cfg.seed, split="train")
    start = time.perf_counter()
    data = [trajectory(den, tok(p)["input_ids"], cfg, tok.mask_token_id, tok.eos_token_id)
            for p in tqdm(prompts, desc=f"{cfg.model}: slow trajectories")]
    held = max(1, len(data) // 10)
    x, y = torch.cat([d[0] for d in data[held:]]), torch.cat([d[1] for d in data[held:]])
    hx, hy = torch.cat([d[0] for d in data[:held]]), torch.cat([d[1] for d in data[:held]])
    filt = UnmaskFilter(cfg.hidden)
    opt = torch.optim.Adam(filt.parameters(), lr=cfg.lr)
    for _ in tqdm(range(cfg.steps), desc="filter"):
        loss = F.binary_cross_entropy_with_logits(filt.logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        held_loss = float(F.binary_cross_entropy_with_logits(filt.logits(hx), hy))
        learned = precision_recall(filt(hx) >= cfg.level, hy)
    threshold = precision_recall(hx[:, 0] >= cfg.level, hy)  # feature 0 is the confidence
    about = {"model": cfg.model, "config": asdict(cfg), "train_positions": len(y), "heldout_positions": len(hy),
             "final_share": float(hy.mean()), "train_loss": float(loss.detach()), "heldout_loss": held_loss,
             "heldout_at_level": {"learn2pd": learned, "threshold": threshold},
             "seconds": time.perf_counter() - start}
    folder = Path(loaded.model.name_or_path)
    filt.save(folder, about)
    print(f"{cfg.model}: filter saved in {folder}; held-out BCE {held_loss:.3f}; at {cfg.level}: learn2pd "
          f"precision {learned['precision']:.3f} recall {learned['recall']:.3f}, threshold precision "
          f"{threshold['precision']:.3f} recall {threshold['recall']:.3f}")
    return about
