"""Prompt lookup decoding (Saxena 2023; the n-gram drafter of transformers' `prompt_lookup_num_tokens`).

No draft model: the last n tokens of prompt + output (n from `max_ngram` down to `min_ngram`) are looked up at
their most recent earlier occurrence in the same context, and the tokens that followed it there become the draft.
The target verifies the draft exactly as in speculative decoding, with the draft deterministic (q one-hot), so the
output is the target's own: token for token under greedy decoding, in distribution under sampling.
"""

from __future__ import annotations

from collections.abc import Iterator

from playground.errors import PlaygroundError
from playground.events import Step
from playground.methods import schedules
from playground.methods.base import DecodeConfig, Draft, Method, Param
from playground.methods.speculative import speculate
from playground.runtime.lm import CachedLM


def find_continuation(context: list[int], max_ngram: int, min_ngram: int, length: int) -> tuple[list[int], int]:
    """The up to `length` tokens after the latest earlier match of the context's last n-gram, and where they start.

    Longer n-grams are tried first; ([], -1) when nothing matches.
    """
    for n in range(min(max_ngram, len(context) - 1), min_ngram - 1, -1):
        tail = context[-n:]
        for start in range(len(context) - n - 1, -1, -1):  # latest occurrence first, the tail itself excluded
            if context[start:start + n] == tail:
                follow = context[start + n:start + n + length]
                return follow, start + n
    return [], -1


class LookupDrafter:
    def __init__(self, max_ngram: int, min_ngram: int):
        self.max_ngram, self.min_ngram = max_ngram, min_ngram

    def propose(self, committed: list[int], gamma: int, gen, stop) -> Draft:
        tokens, source = find_continuation(committed, self.max_ngram, self.min_ngram, gamma)
        return Draft(tokens=tokens, dists=[None] * len(tokens), shown=[1.0] * len(tokens),
                     source=source if tokens else None)

    def rollback(self, length: int) -> None:
        pass  # nothing cached: the draft is read from the committed tokens

    def take_counters(self) -> tuple[int, float]:
        return 0, 0.0


def prompt_lookup(target: CachedLM, draft, prompt_ids: list[int], cfg: DecodeConfig, gamma: int = 8,
                  max_ngram: int = 3, min_ngram: int = 1, schedule: str = "constant") -> Iterator[Step]:
    return speculate(target, LookupDrafter(max_ngram, min_ngram), prompt_ids, cfg,
                     schedules.make_schedule(gamma, schedule))


def check(params: dict) -> None:
    if params["min_ngram"] > params["max_ngram"]:
        raise PlaygroundError(f"min_ngram ({params['min_ngram']}) must not exceed max_ngram ({params['max_ngram']})")


METHOD = Method(
    name="prompt_lookup",
    summary="Drafts by copying what followed the last n-gram earlier in the context; no draft model (lossless).",
    decode=prompt_lookup,
    params=(Param("gamma", 8, "most tokens copied per step", min=1, max=schedules.MAX_GAMMA),
            Param("max_ngram", 3, "longest n-gram looked up", min=1, max=16),
            Param("min_ngram", 1, "shortest n-gram looked up", min=1, max=16),
            schedules.PARAMS[0]),  # confidence-based stops never fire on copied drafts (q = 1)
    check=check,
)
