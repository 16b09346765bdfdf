"""Typed events: the only thing a decoding run hands to the recorder and to the views.

A run is `RunStarted`, then one `Step` per target verification (or per token for autoregressive decoding), then
`RunFinished`. The live view consumes these as they are produced; a replay rebuilds the same objects from SQLite,
so both go through the same drawing code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

# Where a committed token came from; the views colour chips by this.
TARGET = "target"            # plain autoregressive token from the target
ACCEPTED = "accepted"        # drafted and accepted by the target
REPLACEMENT = "replacement"  # target's own token after it rejected a drafted one
BONUS = "bonus"              # extra target token after every drafted token was accepted
SOURCES = (TARGET, ACCEPTED, REPLACEMENT, BONUS)


@dataclass
class RunStarted:
    method: str
    model: str
    draft: str | None
    prompt: str
    prompt_ids: list[int]
    settings: dict            # sampling settings and method parameters, as given to the method
    run_id: int | None = None  # set by the recorder when the run is stored
    prompt_texts: list[str] = field(default_factory=list)  # decoded text of each prompt token


@dataclass
class Step:
    """One target verification: what the draft proposed, what the target decided, and what got committed."""
    index: int
    tokens: list[int]                    # committed by this step, in order
    sources: list[str]                   # per committed token, one of SOURCES
    p: list[float]                       # target probability of each committed token
    q: list[float | None]                # draft probability of each committed token (None: not drafted)
    drafted: list[int] = field(default_factory=list)   # draft proposal, in order
    draft_p: list[float] = field(default_factory=list)  # target probability of each drafted token
    draft_q: list[float] = field(default_factory=list)  # draft probability of each drafted token
    accepted: int = 0                    # drafted tokens accepted (rejection point when < len(drafted))
    gamma: int = 0                       # draft length asked for in this step
    gamma_reason: str = ""               # why the schedule changed gamma after this step ('' = unchanged)
    draft_source: int | None = None      # copied drafts: index in prompt + output where the copied span starts
    threshold: float | None = None       # draft-probability stop threshold in force while drafting (None: none)
    skipped: list[str] = field(default_factory=list)  # layer-skipping drafts: sub-layers off, e.g. "3.attn"
    layers: int = 0                      # layer-skipping drafts: decoder layers of the model
    target_forwards: int = 1
    draft_forwards: int = 0
    draft_s: float = 0.0
    target_s: float = 0.0
    other_s: float = 0.0                 # the rest of the step (acceptance test, sampling, bookkeeping)
    texts: list[str] = field(default_factory=list)          # decoded text of each committed token
    drafted_texts: list[str] = field(default_factory=list)  # decoded text of each drafted token
    # Tree methods: the whole draft tree, one entry per node, parents before children. `drafted` is then the
    # branch the target walked: the accepted path, then the child it turned down first (if any).
    tree_tokens: list[int] = field(default_factory=list)
    tree_parents: list[int] = field(default_factory=list)      # parent node, -1 = the root (newest committed token)
    tree_q: list[float] = field(default_factory=list)          # draft probability of the node's token given its parent
    tree_p: list[float | None] = field(default_factory=list)   # target probability of it given its ancestors (None: pruned)
    tree_state: list[str] = field(default_factory=list)        # accepted / rejected / unreached / pruned (see tree.py)
    tree_round: list[int] = field(default_factory=list)        # the draft round that made the node (the view grows by it)
    tree_texts: list[str] = field(default_factory=list)        # decoded text of each node's token
    # Diffusion: `tokens` land at canvas `positions` (0 = first generated position), in any order; after the step,
    # the whole canvas: committed tokens, and the model's newest guess at each still-masked position.
    positions: list[int] = field(default_factory=list)
    canvas_guess: list[int] = field(default_factory=list)
    canvas_conf: list[float] = field(default_factory=list)     # probability of each committed token or guess
    canvas_texts: list[str] = field(default_factory=list)      # decoded text of each canvas_guess token
    margin: float | None = None          # SchED: mean top-1 minus top-2 logit margin over the block
    # DAG (DA-Transformer): the graph one parallel pass built, and the path decoding chose through it. Vertex j's
    # likeliest tokens, the probability that a path passes through it, the transitions at least 1% likely.
    dag_top: list[list[int]] = field(default_factory=list)
    dag_top_p: list[list[float]] = field(default_factory=list)
    dag_top_texts: list[list[str]] = field(default_factory=list)
    dag_passing: list[float] = field(default_factory=list)
    dag_edges: list[list] = field(default_factory=list)        # [from, to, probability]
    dag_path: list[int] = field(default_factory=list)          # the decoded path's vertices, 0 first

    @property
    def number(self) -> int:
        """The step as people count, from 1 (index counts from 0): what every view shows."""
        return self.index + 1

    @property
    def proposed(self) -> int:
        """Drafted tokens the target verified: a tree's verified nodes, else the drafted chain."""
        if self.tree_tokens:
            return sum(state != "pruned" for state in self.tree_state)
        return len(self.drafted)

    @property
    def rejected_at(self) -> int | None:
        """Index in `drafted` of the first rejected token, or None when all were accepted."""
        return self.accepted if self.accepted < len(self.drafted) else None


@dataclass
class Stats:
    new_tokens: int = 0
    target_forwards: int = 0
    draft_forwards: int = 0
    mean_accepted: float = 0.0           # tokens committed per target forward
    acceptance_rate: float | None = None  # accepted / proposed (tree: verified nodes); None: nothing drafted
    wall_s: float = 0.0
    tokens_per_s: float = 0.0
    draft_s: float = 0.0
    verify_s: float = 0.0

    @classmethod
    def from_steps(cls, steps: list[Step], wall_s: float) -> Stats:
        new = sum(len(s.tokens) for s in steps)
        tf = sum(s.target_forwards for s in steps)
        drafted = sum(s.proposed for s in steps)
        return cls(
            new_tokens=new, target_forwards=tf, draft_forwards=sum(s.draft_forwards for s in steps),
            mean_accepted=new / tf if tf else 0.0,
            acceptance_rate=sum(s.accepted for s in steps) / drafted if drafted else None,
            wall_s=wall_s, tokens_per_s=new / wall_s if wall_s > 0 else 0.0,
            draft_s=sum(s.draft_s for s in steps), verify_s=sum(s.target_s for s in steps),
        )


@dataclass
class RunFinished:
    status: str                          # 'finished', 'cancelled' or 'error'
    text: str                            # the continuation, decoded
    token_ids: list[int]                 # generated ids only
    stats: Stats
    error: str | None = None
    run_id: int | None = None


Event = RunStarted | Step | RunFinished


def output_ids(steps: list[Step], eos_id: int | None = None) -> list[int]:
    """The generated ids: committed tokens in step order, or, for a canvas (diffusion), in position order, ending
    at the first end-of-text (after it a diffusion model writes padding)."""
    if not any(s.positions for s in steps):
        return [t for s in steps for t in s.tokens]
    at = {i: t for s in steps for i, t in zip(s.positions, s.tokens)}
    ids = []
    for i in range(max(at, default=-1) + 1):
        if i not in at:  # a run stopped before the canvas was full
            break
        ids.append(at[i])
        if at[i] == eos_id:
            break
    return ids


def to_dict(event) -> dict:
    return asdict(event)


def step_from_dict(d: dict) -> Step:
    names = {f.name for f in fields(Step)}
    return Step(**{k: v for k, v in d.items() if k in names})
