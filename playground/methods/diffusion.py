"""Diffusion-LM decoding: unmask a canvas of `max_new_tokens` masks, block by block, several tokens per forward.

Strategies (parameter `strategy`), each deciding which masked positions of the current block a forward commits:
- `fixed_steps`: LLaDA (arXiv 2502.09992) low-confidence remasking: `steps` forwards for the canvas, each committing
  its share of the block, the most confident first. steps = length (the default, 0) is one token per forward.
- `threshold`: Fast-dLLM (arXiv 2505.22618) parallel decoding: commit every masked position whose confidence
  reaches `threshold`, and always the most confident one; or, with `factor` > 0, Fast-dLLM's factor rule: the n most
  confident such that (n + 1)(1 - c_n) < factor. Prefix KV cache by default. With `order=left`: the leftmost mask
  and the run of masks right after it that reach `threshold` (a block model's leftmost mask is predicted as its
  autoregressive parent would; most-confident-first lets a weak model write a block's far end before its start).
- `sched`: SchED progress-aware early exit: one token per forward, until the mean top-1 minus top-2 logit margin
  over the block reaches a threshold that falls with the block's progress from `tau_high` to `tau_low`
  (`schedule` linear, cosine or exponential); then every argmax of the block is committed at once.
- `freedave`: FreeDave draft-and-verify: from one forward, candidates commit the top 1, 2, ..., `candidates` most
  confident tokens; one batched forward scores them all; the longest candidate whose every commit is what
  one-token-per-forward decoding would have done is kept. Output identical to `fixed_steps` at steps 0 (same cache).
- `learn2pd`: Learn2PD (arXiv 2509.25188): a tiny learned filter, trained on the model's own one-token-per-forward
  runs, reads each masked position's confidence, margin and neighbours and commits those whose guess it finds final
  with probability at least `filter` (methods/unmask_filter.py; the filter ships beside the model's weights).
"""

from __future__ import annotations

import math

import torch

from playground.errors import PlaygroundError
from playground.events import TARGET, CanvasRecord, Step
from playground.methods.base import DecodeConfig, Method, Param
from playground.methods.unmask_filter import commits_filter, filter_of
from playground.runtime.canvas import CACHES, Canvas, Denoiser, Prediction, check_cache

STRATEGIES = ("fixed_steps", "threshold", "sched", "freedave", "learn2pd")
SCHEDULES = ("linear", "cosine", "exponential")
AUTO_CACHE = {"fixed_steps": "none", "threshold": "prefix", "sched": "none", "freedave": "dual", "learn2pd": "prefix"}


def cache_of(strategy: str, cache: str) -> str:
    """The KV cache a run decodes with: `cache`, or for 'auto' the strategy's usual one."""
    return AUTO_CACHE[strategy] if cache == "auto" else cache
# the parameters only some strategies read (the app shows their inputs with those strategies only)
PARAM_STRATEGIES = {"steps": ("fixed_steps", "sched"), "threshold": ("threshold",), "factor": ("threshold",),
                    "schedule": ("sched",), "tau_high": ("sched",), "tau_low": ("sched",), "candidates": ("freedave",),
                    "filter": ("learn2pd",), "order": ("threshold",)}


def by_confidence(positions: list[int], pred: Prediction) -> list[int]:
    """`positions` most confident first; ties keep position order, so the top one is what argmax would pick."""
    conf = pred.conf[0, [i - pred.first for i in positions]]
    order = torch.sort(conf, descending=True, stable=True).indices.tolist()
    return [positions[i] for i in order]


def commits_fixed(masked: list[int], pred: Prediction, steps_left: int) -> list[int]:
    """LLaDA: this forward's share of the block's masks (ceil(masked / forwards left)), most confident first."""
    return by_confidence(masked, pred)[:math.ceil(len(masked) / max(1, steps_left))]


def commits_threshold(masked: list[int], pred: Prediction, threshold: float, factor: float,
                      order: str = "confidence") -> list[int]:
    if order == "left":  # the leftmost mask, then the run of masks right after it each at least threshold confident
        run = masked[:1]
        for i in masked[1:]:
            if i != run[-1] + 1 or float(pred.conf[0, i - pred.first]) < threshold:
                break
            run.append(i)
        return run
    ranked = by_confidence(masked, pred)
    conf = [float(pred.conf[0, i - pred.first]) for i in ranked]
    if factor > 0:  # Fast-dLLM's factor rule: the largest n with (n + 1)(1 - c_n) < factor
        n = max([k for k in range(1, len(conf) + 1) if (k + 1) * (1 - conf[k - 1]) < factor], default=1)
    else:
        n = max(1, sum(c >= threshold for c in conf))
    return ranked[:n]


def sched_threshold(progress: float, schedule: str, high: float, low: float) -> float:
    """SchED's exit threshold at `progress` (0..1 of the block decoded): from `high` down to `low`."""
    if schedule == "linear":
        return high + (low - high) * progress
    if schedule == "cosine":
        return low + (high - low) * (1 + math.cos(math.pi * progress)) / 2
    return low + (high - low) * math.exp(-5 * progress)


def make_step(index: int, canvas: Canvas, positions: list[int], pred: Prediction, den: Denoiser,
              margin: float | None = None, **extra) -> Step:
    """Commit `positions` (the prediction's tokens there) and describe it; the canvas snapshot goes with the step."""
    positions = sorted(positions)
    tokens = [int(pred.token[0, i - pred.first]) for i in positions]
    conf = [float(pred.conf[0, i - pred.first]) for i in positions]
    canvas.note_guesses(pred.first, pred.token[0], pred.conf[0])
    canvas.commit(positions, tokens, conf, index)
    forwards, seconds = den.take_counters()
    return Step(index=index, tokens=tokens, sources=[TARGET] * len(tokens), p=conf, q=[None] * len(tokens),
                canvas=CanvasRecord(positions=positions, guess=list(canvas.guess), conf=list(canvas.conf),
                                    margin=margin), target_forwards=forwards, target_s=seconds, **extra)


def static_decode(den: Denoiser, canvas: Canvas, cfg: DecodeConfig, strategy: str, steps: int, threshold: float,
                  factor: float, schedule: str, tau_high: float, tau_low: float, level: float = 0.9,
                  order: str = "confidence"):
    """fixed_steps, threshold, sched and learn2pd: one forward per step, the strategy choosing what it commits."""
    filt = filter_of(den.model) if strategy == "learn2pd" else None
    index, p = 0, canvas.prompt_len
    total = steps or canvas.length
    for lo, hi in canvas.blocks():
        budget = max(1, round(total * (hi - lo) / canvas.length))  # this block's share of the forwards
        for k in range(hi - lo):
            masked = canvas.masked(lo, hi)
            if not masked:
                break
            pred = den.predict(canvas.ids[None], p, lo, hi, refresh=k == 0)
            extra = {}
            if strategy == "threshold":
                chosen = commits_threshold(masked, pred, threshold, factor, order)
                extra["threshold"] = threshold if factor <= 0 else None
            elif strategy == "sched":
                tau = sched_threshold(1 - len(masked) / (hi - lo), schedule, tau_high, tau_low)
                margin = float(pred.margin[0, :hi - lo].mean())
                chosen = masked if margin >= tau else commits_fixed(masked, pred, budget - k)
                extra = {"threshold": tau, "margin": margin}
            elif strategy == "learn2pd":
                chosen = commits_filter(canvas, masked, pred, lo, hi, cfg.eos_id, filt, level)
                extra["threshold"] = level
            else:
                chosen = commits_fixed(masked, pred, budget - k)
            yield make_step(index, canvas, chosen, pred, den, **extra)
            index += 1
            if canvas.finished_at_eos(cfg.eos_id):
                return


def freedave_decode(den: Denoiser, canvas: Canvas, cfg: DecodeConfig, candidates: int):
    """FreeDave: draft several one-token steps from one forward, verify them all in one batched forward."""
    index, p = 0, canvas.prompt_len
    for lo, hi in canvas.blocks():
        pred = den.predict(canvas.ids[None], p, lo, hi, refresh=True)
        while masked := canvas.masked(lo, hi):
            picks = by_confidence(masked, pred)[:candidates]
            tokens = [int(pred.token[0, i - pred.first]) for i in picks]
            # candidate j commits the first j picks; one that fills the block needs no forward of its own
            batch = [canvas.with_commits(picks[:j], tokens[:j]) for j in range(1, len(picks) + 1) if j < len(masked)]
            scored = den.predict(torch.stack(batch), p, lo, hi, refresh=False) if batch else None
            accepted = 1
            while accepted < len(picks):  # would one-token decoding, after `accepted` commits, commit the next pick?
                left = [i for i in masked if i not in picks[:accepted]]
                row = scored.row(accepted - 1)
                top = by_confidence(left, row)[0]
                if top != picks[accepted] or int(row.token[0, top - row.first]) != tokens[accepted]:
                    break
                accepted += 1
            step = make_step(index, canvas, picks[:accepted], pred, den, drafted=tokens[1:], accepted=accepted - 1,
                             draft_p=[float(pred.conf[0, i - pred.first]) for i in picks[1:]])
            yield step
            index += 1
            if canvas.finished_at_eos(cfg.eos_id):
                return
            if accepted - 1 < len(batch):
                pred = scored.row(accepted - 1)


def diffusion_decode(target, draft, prompt_ids: list[int], cfg: DecodeConfig, strategy: str, block: int,
                     steps: int, threshold: float, factor: float, schedule: str, tau_high: float, tau_low: float,
                     candidates: int, cache: str, filter: float, order: str):
    """Diffusion decoding of `cfg.max_new_tokens` positions after the prompt; one Step per committing forward.

    Args: strategy (see the module docstring); block: semi-autoregressive block length; steps: forwards for the
    canvas for fixed_steps/sched (0: one token per forward); threshold/factor: Fast-dLLM's rules; schedule, tau_high,
    tau_low: SchED's exit threshold; candidates: FreeDave's drafts per forward; cache: none, prefix, dual or auto
    (the strategy's usual one); filter: learn2pd's level, the least probability of being final a commit needs;
    order: threshold's order, by confidence (Fast-dLLM) or from the left (see commits_threshold)."""
    if cfg.mask_id is None:
        raise PlaygroundError("the model's tokenizer has no mask token: diffusion decoding needs one")
    den = Denoiser(target.model, cache_of(strategy, cache), cfg.sampling)
    canvas = Canvas.new(prompt_ids, cfg.max_new_tokens, cfg.mask_id, block)
    if strategy == "freedave":
        yield from freedave_decode(den, canvas, cfg, candidates)
    else:
        yield from static_decode(den, canvas, cfg, strategy, steps, threshold, factor, schedule, tau_high, tau_low,
                                 filter, order)


def check(params: dict) -> None:
    if params["tau_low"] > params["tau_high"]:
        raise PlaygroundError(f"tau_low ({params['tau_low']}) must not exceed tau_high ({params['tau_high']})")


def check_model(params: dict, model) -> None:
    check_cache(model, params["cache"])
    if params["strategy"] == "learn2pd":
        filter_of(model)


METHOD = Method(
    name="diffusion",
    summary="Masked-diffusion LM: fills a canvas of masks block by block, several tokens per forward "
            "(LLaDA, Fast-dLLM, SchED, FreeDave, Learn2PD).",
    decode=diffusion_decode,
    params=(
        Param("strategy", "threshold", "how a forward chooses what to commit", choices=STRATEGIES),
        Param("block", 32, "semi-autoregressive block length (tokens)", min=1, max=2048),
        Param("steps", 0, "fixed_steps/sched: forwards for the whole canvas; 0 = one token per forward",
              min=0, max=2048),
        Param("threshold", 0.9, "threshold: commit every masked token at least this confident", min=0.0, max=1.0),
        Param("factor", 0.0, "threshold: Fast-dLLM's factor rule instead of the threshold (0 = off)",
              min=0.0, max=100.0),
        Param("order", "confidence", "threshold: commit the confident masks anywhere in the block (confidence), or "
              "the leftmost mask and the confident run right after it (left)", choices=("confidence", "left")),
        Param("schedule", "cosine", "sched: how the exit threshold falls", choices=SCHEDULES),
        Param("tau_high", 7.5, "sched: exit threshold (logit margin) at the start of a block", min=0.0, max=100.0),
        Param("tau_low", 2.5, "sched: exit threshold at the end of a block", min=0.0, max=100.0),
        Param("candidates", 4, "freedave: drafted one-token steps verified per forward", min=2, max=64),
        Param("filter", 0.98, "learn2pd: commit every masked guess the learned filter finds final with at least "
              "this probability", min=0.0, max=1.0),
        Param("cache", "auto", "KV reuse (Fast-dLLM): none, prefix, dual, or auto (the strategy's usual)",
              choices=("auto",) + CACHES),
    ),
    lossless=False,
    check=check,
    check_model=check_model,
    greedy_only=lambda params: params["strategy"] == "freedave",
    kinds=("masked",),  # verification compares with greedy decoding
)
