"""Learn2PD's rule for the `diffusion` method (strategy `learn2pd`): what the filter reads of each masked position of
the block, and which positions a forward commits (models/unmask_filter.py has the filter itself).

The features of masked position i, all from the forward just made and the canvas:
- confidence: the guess's probability; margin: top-1 minus top-2 logit (/ 10, capped at 2);
- from_first_masked: how far i sits after the block's leftmost masked position (/ block length);
- masked_share: the share of the block still masked;
- left_known / right_known: whether the neighbour is committed (the block's left edge: yes, the text before is;
  its right edge: no), left_confidence / right_confidence: the neighbour's guess's probability, 1 when committed;
- is_end: the guess is the end-of-text token;
- same_guess: the previous forward guessed the same token there, previous_confidence: how sure it was (0 on a
  block's first forward): a guess that has stopped changing is more likely final.
Learn2PD's End-of-Text Prediction, stopping once an end-of-text is committed with everything before it, is what
every strategy of the method already does (Canvas.finished_at_eos): padding after the answer is never decoded.
"""

from __future__ import annotations

import torch

from playground.errors import PlaygroundError
from playground.models.unmask_filter import UnmaskFilter, filter_beside
from playground.runtime.canvas import Canvas, Prediction


def filter_of(model) -> UnmaskFilter:
    """The filter shipped beside `model`'s weights; one line saying how to make one when there is none."""
    folder = str(getattr(model, "name_or_path", "") or "")
    filt = filter_beside(folder)
    if filt is None:
        name = folder.rstrip("/").rsplit("/", 1)[-1] or type(model).__name__
        raise PlaygroundError(f"strategy learn2pd needs a filter trained for {name!r} (unmask_filter.safetensors "
                              f"beside its weights): python -m playground.training.train learn2pd --model {name}")
    return filt


def features(canvas: Canvas, masked: list[int], pred: Prediction, lo: int, hi: int, eos_id: int | None
             ) -> torch.Tensor:
    """[len(masked), len(FEATURES)] for the masked positions of block [lo, hi) after forward `pred`."""
    conf = pred.conf[0, :hi - lo].float()                    # [m] per block position
    margin = (pred.margin[0, :hi - lo].float() / 10).clamp(0, 2)
    known = torch.tensor([canvas.committed_at[i] >= 0 for i in range(lo, hi)], dtype=torch.float32)
    seen = torch.where(known.bool(), torch.ones_like(conf), conf)  # a committed neighbour is certain
    at = torch.tensor(masked) - lo                           # [n] block offsets
    left_known = torch.cat([torch.ones(1), known])[at]       # before the block: committed
    left_conf = torch.cat([torch.ones(1), seen])[at]
    right_known = torch.cat([known, torch.zeros(1)])[at + 1]  # after the block: still masked
    right_conf = torch.cat([seen, torch.zeros(1)])[at + 1]
    token = pred.token[0, at]
    is_end = (token == eos_id).float() if eos_id is not None else torch.zeros(len(at))
    before = torch.tensor([canvas.guess[i] for i in masked])  # the previous forward's guesses (make_step notes them)
    before_conf = torch.tensor([canvas.conf[i] for i in masked], dtype=torch.float32)
    same = (token == before).float()
    return torch.stack([conf[at], margin[at], (at - at.min()).float() / (hi - lo),
                        torch.full((len(at),), len(masked) / (hi - lo)), left_known, left_conf, right_known,
                        right_conf, is_end, same, before_conf * same], dim=1)


def commits_filter(canvas: Canvas, masked: list[int], pred: Prediction, lo: int, hi: int, eos_id: int | None,
                   filt: UnmaskFilter, level: float) -> list[int]:
    """The masked positions whose guess the filter finds final with probability >= `level`, and always the most
    confident one (so each forward commits something)."""
    with torch.inference_mode():
        score = filt(features(canvas, masked, pred, lo, hi, eos_id))  # [n]
    chosen = [i for i, s in zip(masked, score.tolist()) if s >= level]
    if not chosen:
        conf = pred.conf[0, [i - pred.first for i in masked]]
        chosen = [masked[int(conf.argmax())]]
    return chosen
