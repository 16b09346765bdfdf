"""Self-speculative decoding: the target drafts with some of its own sub-layers switched off, then verifies with
all of them (Draft & Verify, Zhang et al. 2023, arXiv 2309.08168). No second model, no extra memory.

The draft runs on the target's own KV cache: for the committed prefix it reads the full model's exact keys and
values. While drafting, the layers that run append entries for the drafted tokens, computed from skipped-layer
hidden states, and the skipped attention layers append nothing. Both are wrong for the full model, so every layer is
cut back to the committed prefix before the target verifies; the verifying forward then writes the exact entries
of every layer, and the usual rollback keeps those of the accepted tokens.

Which sub-layers to skip:
- `self_speculative`: the set found by `python -m playground.training.skipsearch` (stored as skip_set.json beside
  the model), the evenly spread static skip of Unified Layer Skipping (`skip=uls`), or a list such as
  `skip=3,5.attn,7.mlp`.
- `early_exit` (LayerSkip, arXiv 2404.16710): the first `exit_layer` layers, then the final norm and LM head.
Drafting stops adaptively by default: below a confidence threshold that follows the acceptance rate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from playground.errors import PlaygroundError
from playground.events import Step
from playground.methods import schedules
from playground.methods.base import DecodeConfig, Draft, Method, Param
from playground.methods.speculative import ModelDrafter, speculate
from playground.runtime.lm import CachedLM
from playground.runtime.sublayers import Gates, SubLayer, check_skip

SKIP_FILE = "skip_set.json"


def sublayer_name(s: SubLayer) -> str:
    return f"{s[0]}.{s[1]}"


def parse_skip_list(text: str, num_layers: int) -> list[SubLayer]:
    """'3,5.attn,7.mlp' -> sub-layers; a bare layer number means both of its sub-layers."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        layer, _, kind = item.partition(".")
        if not layer.isdigit() or kind not in ("", "attn", "mlp"):
            raise PlaygroundError(f"cannot read skip item {item!r}: write a layer number, N.attn or N.mlp")
        out += [(int(layer), k) for k in ((kind,) if kind else ("attn", "mlp"))]
    try:
        return check_skip(out, num_layers)
    except ValueError as exc:
        raise PlaygroundError(str(exc)) from None


def unified_skip(num_layers: int, count: int) -> list[SubLayer]:
    """Unified Layer Skipping: `count` whole layers, spread evenly over the middle (first and last layer kept)."""
    middle = list(range(1, num_layers - 1))
    count = max(0, min(count, len(middle)))
    picked = sorted({middle[round((i + 0.5) * len(middle) / count - 0.5)] for i in range(count)}) if count else []
    return [(i, k) for i in picked for k in ("attn", "mlp")]


def stored_skip(model) -> list[SubLayer] | None:
    """The searched skip set stored beside a local model, or None."""
    path = Path(getattr(model.config, "_name_or_path", "") or "") / SKIP_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())["skip"]
    return parse_skip_list(",".join(stored), model.config.num_hidden_layers)


def resolve_skip(model, skip: str, uls_layers: int) -> list[SubLayer]:
    n = model.config.num_hidden_layers
    uls = unified_skip(n, uls_layers or n // 2)
    if skip == "auto":
        return stored_skip(model) or uls
    if skip == "searched":
        found = stored_skip(model)
        if found is None:
            raise PlaygroundError(f"no {SKIP_FILE} beside this model: run python -m playground.training.skipsearch "
                                  "--model NAME, or pass skip=uls or a list of sub-layers")
        return found
    return uls if skip == "uls" else parse_skip_list(skip, n)


class SelfDrafter(ModelDrafter):
    """Drafts with the target itself, `skip` switched off, on the target's own KV cache (own counters)."""

    def __init__(self, target: CachedLM, skip: list[SubLayer], cfg: DecodeConfig):
        super().__init__(target.share(), cfg)
        self.skip = skip
        self.names = [sublayer_name(s) for s in skip]

    def propose(self, committed: list[int], gamma: int, gen, stop) -> Draft:
        start = self.lm.length
        with self.lm.skipping(self.skip):
            draft = super().propose(committed, gamma, gen, stop)
        self.lm.crop(start)  # drafted entries are the skipped model's, not the target's: verification rewrites them
        draft.skipped, draft.layers = self.names, self.lm.num_layers
        return draft

    def rollback(self, length: int) -> None:
        pass  # the cache is the target's, rolled back by the verifier


def layer_skipping(target: CachedLM, skip: list[SubLayer], prompt_ids: list[int], cfg: DecodeConfig, gamma: int,
                   schedule: dict) -> Iterator[Step]:
    drafter = SelfDrafter(target, skip, cfg)
    return speculate(target, drafter, prompt_ids, cfg, schedules.make_schedule(gamma, **schedule))


def self_speculative(target: CachedLM, draft, prompt_ids: list[int], cfg: DecodeConfig, skip: str = "auto",
                     uls_layers: int = 0, gamma: int = 8, **schedule) -> Iterator[Step]:
    return layer_skipping(target, resolve_skip(target.model, skip, uls_layers), prompt_ids, cfg, gamma, schedule)


def exit_skip(model, exit_layer: int) -> list[SubLayer]:
    n = model.config.num_hidden_layers
    k = exit_layer or max(1, n // 2)
    if not 1 <= k < n:
        raise PlaygroundError(f"exit_layer must be between 1 and {n - 1} for this {n}-layer model, got {k}")
    return [(i, kind) for i in range(k, n) for kind in ("attn", "mlp")]


def early_exit(target: CachedLM, draft, prompt_ids: list[int], cfg: DecodeConfig, exit_layer: int = 0,
               gamma: int = 8, **schedule) -> Iterator[Step]:
    return layer_skipping(target, exit_skip(target.model, exit_layer), prompt_ids, cfg, gamma, schedule)


def check_layers(model) -> None:
    try:
        Gates.of(model)
    except ValueError as exc:
        raise PlaygroundError(str(exc)) from None


def check_self_speculative(params: dict, model) -> None:
    check_layers(model)
    resolve_skip(model, params["skip"], params["uls_layers"])


def check_early_exit(params: dict, model) -> None:
    check_layers(model)
    exit_skip(model, params["exit_layer"])


SCHEDULE_PARAMS = (Param("schedule", "adaptive", "draft-length schedule", choices=schedules.KINDS),
                   *schedules.PARAMS[1:])
GAMMA = Param("gamma", 8, "most tokens drafted per step", min=1, max=schedules.MAX_GAMMA)
SKIP = Param("skip", "auto", "sub-layers to skip: auto (searched set, else uls), searched, uls, or a list like "
             "3,5.attn,7.mlp")
ULS_LAYERS = Param("uls_layers", 0, "uls: whole layers to skip, spread evenly (0 = half)", min=0, max=1024)

METHOD = Method(
    name="self_speculative",
    summary="The target drafts with some of its sub-layers skipped, then verifies with all (Draft & Verify; "
            "lossless).",
    decode=self_speculative,
    params=(SKIP, ULS_LAYERS, GAMMA, *SCHEDULE_PARAMS),
    check_model=check_self_speculative,
)

EARLY_EXIT = Method(
    name="early_exit",
    summary="Drafts with the first k layers and the LM head, verifies with all layers (LayerSkip; lossless).",
    decode=early_exit,
    params=(Param("exit_layer", 0, "layers the draft runs (0 = half)", min=0, max=1024), GAMMA,
            *SCHEDULE_PARAMS),
    check_model=check_early_exit,
)
