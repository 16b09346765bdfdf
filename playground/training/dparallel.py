"""dParallel's certainty-forcing distillation (Chen et al. 2025, arXiv 2509.26488) for a diffusion model:
tiny-code-diffusion -> tiny-code-diffusion-dparallel, a model that is sure of many masked tokens at once.

A masked-diffusion model commits few tokens per forward because, with much of the block still masked, it is rarely
confident of any one of them. dParallel fine-tunes it on its own outputs so that it becomes confident earlier:
1. Trajectories: the model decodes prompts cut from training files the slow way (one token per forward, the most
   confident first, prefix cache), and its outputs become the targets: the model learns to follow itself, so the
   output it converges to is kept.
2. Loss on each [prompt ; own output] row, a random share t of the output masked:
       L = CE(masked tokens -> own output) + certainty x mean entropy of the masked positions it already predicts right
   the second term (certainty forcing) pushes the correct predictions to be sure, in parallel, while the first
   keeps them correct.

    python -m playground.training.train dparallel          # a few CPU minutes; writes assets/models/<name>/
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground import engine
from playground.data.stdlib import heldout_prompts, token_array
from playground.models import loading
from playground.models.loading import MODELS_DIR
from playground.training.configs import CKPT_DIR
from playground.training.diffusion import predicted
from playground.training.hardware import autocast

SLOW = {"strategy": "fixed_steps", "steps": 0, "cache": "prefix", "block": 32}


@dataclass
class DParallelConfig:
    base: str = "tiny-code-diffusion"
    name: str = "tiny-code-diffusion-dparallel"
    prompts: int = 320          # cut from training files
    prompt_tokens: int = 64
    new_tokens: int = 64
    steps: int = 400
    batch_size: int = 16
    lr: float = 3e-5
    warmup: int = 20
    certainty: float = 0.2      # weight of the entropy term (1.0: sure and wrong, see docs/BENCHMARKS.md)
    seed: int = 0
    targets: str = "own"        # own: the base model's slow outputs (dParallel); data: the files' real continuations
    out: str = ""               # where the model goes (default: assets/models/<name>)
    cache_rows: bool = True     # keep the slow outputs under checkpoints/ for a rerun with other loss settings


def own_outputs(cfg: DParallelConfig, tokenizer) -> torch.Tensor:
    """[N, prompt_tokens + new_tokens]: each training prompt and the base model's slow output after it."""
    rows = []
    for text in tqdm(heldout_prompts(tokenizer, cfg.prompts, cfg.prompt_tokens, cfg.seed, split="train"),
                     desc=f"{cfg.base}: its own slow outputs"):
        ids = tokenizer(text)["input_ids"][:cfg.prompt_tokens]
        if len(ids) < cfg.prompt_tokens:
            continue
        *_, finished = engine.generate(engine.Request(prompt=tokenizer.decode(ids), model=cfg.base,
                                                      method="diffusion", max_new_tokens=cfg.new_tokens,
                                                      stop_at_eos=False, params=SLOW))
        out = finished.token_ids
        if finished.status == "finished" and len(out) == cfg.new_tokens:
            rows.append(ids + out)
    return torch.tensor(rows)


def rows_file(cfg: DParallelConfig):
    """Where the base model's slow outputs for `cfg` are kept (checkpoints/, not committed)."""
    return CKPT_DIR / f"{cfg.name}-rows-{cfg.base}-{cfg.prompts}-{cfg.prompt_tokens}-{cfg.new_tokens}-{cfg.seed}.pt"


def certainty_forcing_loss(model, x: torch.Tensor, prompt_len: int, mask_id: int, certainty: float,
                           gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """The loss of the module docstring on rows x [B, n]; also the share of masked tokens predicted right."""
    b, n = x.shape
    t = torch.rand(b, 1, generator=gen).clamp(0.05, 1.0)
    masked = (torch.rand(b, n, generator=gen) < t) & (torch.arange(n)[None] >= prompt_len)  # [B, n]
    hidden = model.model(input_ids=torch.where(masked, mask_id, x)).last_hidden_state
    logits = predicted(model, hidden, masked).float()  # [masked, V]
    target = x[masked]
    ce = F.cross_entropy(logits, target)
    logp = logits.log_softmax(-1)
    right = logits.argmax(-1) == target
    entropy = -(logp.exp() * logp).sum(-1)  # [masked]
    forcing = entropy[right].mean() if right.any() else logits.new_zeros(())
    return ce + certainty * forcing, float(right.float().mean())


def train_dparallel(cfg: DParallelConfig) -> None:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    from transformers import AutoModelForMaskedLM
    base = loading.load(cfg.base)
    tokenizer = base.tokenizer
    started = time.perf_counter()
    if cfg.targets == "data":  # windows of the training files: real code after the prompt
        tokens = token_array(tokenizer, "train")
        starts = torch.randint(0, len(tokens) - cfg.prompt_tokens - cfg.new_tokens, (cfg.prompts * 4,), generator=gen)
        rows = torch.stack([torch.from_numpy(tokens[s:s + cfg.prompt_tokens + cfg.new_tokens].astype("int64"))
                            for s in starts.tolist()])
    elif cfg.cache_rows and rows_file(cfg).exists():  # the slow outputs take minutes: a rerun with other loss
        rows = torch.load(rows_file(cfg))                # settings reuses them
    else:
        rows = own_outputs(cfg, tokenizer)
        if cfg.cache_rows:
            rows_file(cfg).parent.mkdir(parents=True, exist_ok=True)
            torch.save(rows, rows_file(cfg))
    model = AutoModelForMaskedLM.from_pretrained(base.model.name_or_path, dtype=torch.float32).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    log = []
    bar = tqdm(range(cfg.steps), desc=cfg.name)
    for step in bar:
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        pick = torch.randint(0, len(rows), (cfg.batch_size,), generator=gen)
        with autocast(torch.device("cpu")):
            loss, right = certainty_forcing_loss(model, rows[pick], cfg.prompt_tokens, tokenizer.mask_token_id,
                                                 cfg.certainty, gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", right=f"{right:.2f}")
        if step % 50 == 0 or step == cfg.steps - 1:
            log.append({"step": step, "loss": loss.item(), "right": right})
    out = Path(cfg.out) if cfg.out else MODELS_DIR / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    model.eval().to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    about = {"base": cfg.base, "config": asdict(cfg), "rows": len(rows), "log": log,
             "train_seconds": time.perf_counter() - started}
    (out / "training.json").write_text(json.dumps(about, indent=2))
    (out / "README.md").write_text(card_text(cfg, about))
    print(f"{cfg.name}: saved in {out} ({len(rows)} rows of its own output, {about['train_seconds'] / 60:.1f} min)")


def card_text(cfg: DParallelConfig, about: dict) -> str:
    return "\n".join([
        "---", "library_name: transformers", "pipeline_tag: fill-mask",
        "tags: [decoding-playground, code, diffusion, dparallel]", "---", f"# {cfg.name}", "",
        f"`{cfg.base}` after dParallel's certainty-forcing distillation (arXiv 2509.26488), for the `diffusion` "
        "method: trained to follow its own one-token-per-forward outputs while being sure, in parallel, of the "
        "masked tokens it already predicts right, so that confidence-threshold decoding commits more per forward.",
        "", "| | |", "|---|---|",
        f"| data | {about['rows']} prompts of {cfg.prompt_tokens} tokens cut from training files of the standard "
        f"library, each followed by `{cfg.base}`'s own slow output ({cfg.new_tokens} tokens, one per forward) |",
        f"| loss | cross-entropy of the masked tokens against that output + {cfg.certainty} x the mean entropy of the "
        "masked positions predicted right (certainty forcing); a share t ~ U(0.05, 1) of the output masked |",
        f"| training | {cfg.steps} steps x {cfg.batch_size} rows, AdamW lr {cfg.lr}, cosine, on a CPU, "
        f"{about['train_seconds'] / 60:.1f} min in all |",
        "", "What it buys over the base model is measured in docs/BENCHMARKS.md (\"dParallel and Learn2PD\").", "",
        "Reproduce: `python -m playground.training.train dparallel`.", ""])
