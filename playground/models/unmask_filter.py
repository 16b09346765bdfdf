"""Learn2PD's filter (Bao et al. 2025, "Learning to Parallel", arXiv 2509.25188): a tiny network that reads what one
forward of a diffusion model says about a masked position and answers "is this guess already the final token?".

Decoding with it (`diffusion` method, `strategy=learn2pd`) commits every masked position of the block whose answer is
at least `filter` likely, approximating the oracle that unmasks a token exactly when its guess is right. It is
trained after the diffusion model, on that model's own one-token-per-forward trajectories (training/learn2pd.py), in
seconds on a CPU, and ships beside the model's weights:

    assets/models/tiny-code-diffusion/unmask_filter.safetensors   the weights
    assets/models/tiny-code-diffusion/unmask_filter.json          sizes, feature names, how it was trained

    >>> filt = filter_beside("assets/models/tiny-code-diffusion")
    >>> filt(torch.zeros(3, len(FEATURES))).shape      # the probability that each guess is final
    torch.Size([3])
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS, CONFIG = "unmask_filter.safetensors", "unmask_filter.json"
# what the filter reads of one masked position (methods/unmask_filter.py computes them from a forward and the canvas)
FEATURES = ("confidence", "margin", "from_first_masked", "masked_share", "left_known", "left_confidence",
            "right_known", "right_confidence", "is_end", "same_guess", "previous_confidence")


class UnmaskFilter(nn.Module):
    """[N, features] -> [N] probability that each position's current guess is its final token."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(len(FEATURES), hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # [N]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def save(self, folder: Path, about: dict) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS))
        (folder / CONFIG).write_text(json.dumps({"hidden": self.hidden, "features": list(FEATURES), **about},
                                                indent=2))


@functools.lru_cache(maxsize=8)
def filter_beside(folder: str) -> UnmaskFilter | None:
    """The filter shipped beside a diffusion model's weights, or None when it has none (or one made for other
    features)."""
    path = Path(folder)
    if not folder or not (path / WEIGHTS).is_file() or not (path / CONFIG).is_file():
        return None
    config = json.loads((path / CONFIG).read_text())
    if tuple(config.get("features", ())) != FEATURES:
        return None
    filt = UnmaskFilter(int(config["hidden"]))
    filt.load_state_dict(load_file(str(path / WEIGHTS)))
    return filt.eval().requires_grad_(False)
