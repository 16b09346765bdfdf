"""CopySpec: speculative copy-and-paste (Dumitru et al. 2025, arXiv 2502.08923).

The context (prompt + output so far) is indexed by a rolling hash of every window of `match_len` consecutive
tokens; the index grows as tokens are committed and is never rebuilt. Each step:

1. hash the last `match_len` committed tokens and look the hash up; the tokens of a hit are compared too, so a
   hash collision is never taken for a match;
2. on a match, draft the `span` tokens that followed its latest earlier occurrence (the copy may run on into the
   tokens it is copying, as LZ77 does, so a repeat closer than `span` tokens is still copied in full);
3. with no match, draft `gamma` tokens with the draft model when one is given (`fallback=draft`: the combination
   with speculative decoding the paper reports), else draft nothing and let the target make one token;
4. the target verifies the draft in one forward exactly as in speculative decoding (copied tokens are
   deterministic drafts, q one-hot), so the output is the target's own: token for token under greedy decoding,
   in distribution under sampling.

The copied span adapts to how copying goes (`next_span`): after a copied step whose every token was accepted it
doubles (up to `max_span`); after one where fewer than half were accepted it halves (down to `min_span`); otherwise
it stays. Steps drafted by the model leave it alone.
"""

from __future__ import annotations

from collections.abc import Iterator

from playground.errors import PlaygroundError
from playground.events import Step
from playground.methods import schedules
from playground.methods.base import DecodeConfig, Draft, Method, Param
from playground.methods.speculative import ModelDrafter, speculate
from playground.runtime.lm import CachedLM

MODULUS = (1 << 61) - 1  # a Mersenne prime: windows of distinct tokens practically never share a hash
BASE = 1_000_003         # larger than any vocabulary, so a window's hash is its tokens as digits, reduced


class RollingHashIndex:
    """Every window of `width` consecutive tokens, by a rolling (Rabin-Karp) hash, for lookups in O(1).

    `starts[h]` lists the start positions of the windows whose hash is h, oldest first. Appending a token slides
    the hash of the last window along by one: take out the term of the token that leaves, shift, add the new one;
    nothing already indexed is read again. A smaller `modulus` only makes collisions likelier (tests use it).
    """

    def __init__(self, width: int, modulus: int = MODULUS, base: int = BASE):
        self.width, self.modulus, self.base = width, modulus, base
        self.tokens: list[int] = []
        self.starts: dict[int, list[int]] = {}
        self.hash = 0  # of the last `width` tokens (of all of them while there are fewer)
        self._leaving = pow(base, width - 1, modulus)  # weight of the oldest token of a window

    def __len__(self) -> int:
        return len(self.tokens)

    def append(self, token: int) -> None:
        if len(self.tokens) >= self.width:
            self.hash -= (self.tokens[-self.width] + 1) * self._leaving
        self.tokens.append(token)
        self.hash = (self.hash * self.base + token + 1) % self.modulus  # + 1: token 0 still counts
        if len(self.tokens) >= self.width:
            self.starts.setdefault(self.hash, []).append(len(self.tokens) - self.width)

    def extend(self, tokens: list[int]) -> None:
        for token in tokens:
            self.append(token)

    def latest_match(self) -> int | None:
        """Start of the latest earlier window holding the same tokens as the last one; None when there is none."""
        tail_start = len(self.tokens) - self.width
        if tail_start <= 0:
            return None
        tail = self.tokens[tail_start:]
        for start in reversed(self.starts.get(self.hash, ())):
            if start < tail_start and self.tokens[start:start + self.width] == tail:  # rules out collisions
                return start
        return None


def copy_span(context: list[int], source: int, length: int) -> list[int]:
    """The `length` tokens from position `source` on. Past the end of the context the copy reads its own output,
    so copying from a repeat that is closer than `length` tokens repeats it (as LZ77 does)."""
    out: list[int] = []
    for pos in range(source, source + length):
        out.append(context[pos] if pos < len(context) else out[pos - len(context)])
    return out


def next_span(span: int, drafted: int, accepted: int, low: int, high: int) -> int:
    """Double the span after a fully accepted copy, halve it when fewer than half were accepted."""
    if accepted == drafted:
        return min(2 * span, high)
    if 2 * accepted < drafted:
        return max(span // 2, low)
    return span


class CopySpec:
    """The drafter and its own schedule: the span it copies adapts to how the target received its copies.

    index: the rolling-hash index over the committed tokens; span, min_span, max_span: the copied length and its
    bounds; fallback: a ModelDrafter for steps with no match (None: draft nothing then); gamma: its draft length.
    """

    threshold = None  # no confidence stop: a copied token has no draft probability to stop on

    def __init__(self, index: RollingHashIndex, span: int, min_span: int, max_span: int,
                 fallback: ModelDrafter | None, gamma: int):
        self.index, self.span, self.min_span, self.max_span = index, span, min_span, max_span
        self.fallback, self.fallback_gamma = fallback, gamma
        self.copied = False  # was the last draft copied? only copies move the span

    @property
    def gamma(self) -> int:
        """The most tokens a step may draft: the span, or the model's gamma when that is longer."""
        return max(self.span, self.fallback_gamma) if self.fallback else self.span

    def stop_after(self, confidences: list[float]) -> bool:
        return False

    def propose(self, committed: list[int], gamma: int, gen, stop) -> Draft:
        self.index.extend(committed[len(self.index):])  # only what was committed since the last step
        start = self.index.latest_match()
        self.copied = start is not None
        if self.copied:
            source, length = start + self.index.width, min(self.span, gamma)
            tokens = copy_span(committed, source, length)
            return Draft(tokens=tokens, dists=[None] * length, shown=[1.0] * length, source=source, gamma=length)
        if self.fallback is None:
            return Draft(gamma=0)
        length = min(self.fallback_gamma, gamma)
        draft = self.fallback.propose(committed, length, gen, stop)
        draft.gamma = length
        return draft

    def update(self, drafted: int, accepted: int) -> str:
        """Adapt the span after a verified copy; return why it changed (empty when it did not)."""
        if not self.copied or drafted == 0:
            return ""
        old = self.span
        self.span = next_span(old, drafted, accepted, self.min_span, self.max_span)
        verdict = f"all {drafted} copied tokens accepted" if accepted == drafted else \
            f"{accepted} of {drafted} copied tokens accepted"
        return f"{verdict}: span {old} -> {self.span}" if self.span != old else ""

    def rollback(self, length: int) -> None:
        if self.fallback:
            self.fallback.rollback(length)

    def take_counters(self) -> tuple[int, float]:
        return self.fallback.take_counters() if self.fallback else (0, 0.0)


def copyspec(target: CachedLM, draft: CachedLM | None, prompt_ids: list[int], cfg: DecodeConfig, span: int = 8,
             min_span: int = 2, max_span: int = 32, match_len: int = 3, gamma: int = 4,
             fallback: str = "draft") -> Iterator[Step]:
    """CopySpec over `speculate`. draft: the draft model for steps with no match (None: no fallback drafts)."""
    model = ModelDrafter(draft, cfg) if draft is not None and fallback == "draft" else None
    copier = CopySpec(RollingHashIndex(match_len), span, min_span, max_span, model, gamma)
    return speculate(target, copier, prompt_ids, cfg, schedule=copier)


def check(params: dict) -> None:
    if not params["min_span"] <= params["span"] <= params["max_span"]:
        raise PlaygroundError(f"span ({params['span']}) must lie between min_span ({params['min_span']}) and "
                              f"max_span ({params['max_span']})")


METHOD = Method(
    name="copyspec",
    summary="Copies long repeated spans found by a rolling-hash index of the context; the draft model drafts "
            "where nothing repeats (lossless).",
    decode=copyspec,
    params=(Param("span", 8, "tokens copied per step at the start; doubles after a fully accepted copy, halves "
                  "when fewer than half are accepted", min=1, max=schedules.MAX_GAMMA),
            Param("min_span", 2, "shortest copied span", min=1, max=schedules.MAX_GAMMA),
            Param("max_span", 32, "longest copied span", min=1, max=schedules.MAX_GAMMA),
            Param("match_len", 3, "tokens of the hashed window that must repeat", min=1, max=16),
            Param("gamma", 4, "tokens the draft model drafts where nothing repeats", min=1, max=schedules.MAX_GAMMA),
            Param("fallback", "draft", "where nothing repeats: draft with the draft model (when one is loaded) or "
                  "draft nothing", choices=("draft", "none"))),
    uses_draft=lambda params: params["fallback"] == "draft",
    check=check,
)
