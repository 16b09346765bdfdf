"""Typed events: the only thing a decoding run hands to the recorder and to the views.

A run is `RunStarted`, then one `Step` per target verification (or per token for autoregressive decoding), then
`RunFinished`. The live view consumes these as they are produced; a replay rebuilds the same objects from SQLite,
so both go through the same drawing code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


# What a step drafted or built besides a chain of tokens: its family, the sub-record it carries (see Step.kind).
CHAIN = "chain"    # autoregressive decoding and chain drafts: no sub-record
TREE = "tree"      # tree methods: Step.tree
CANVAS = "canvas"  # diffusion: Step.canvas
DAG = "dag"        # DA-Transformer graphs (dag, gad's first step): Step.dag
KINDS = (CHAIN, TREE, CANVAS, DAG)


@dataclass
class TreeRecord:
    """A tree method's whole draft tree, one entry per node, parents before children. The step's `drafted` is then
    the branch the target walked: the accepted path, then the child it turned down first (if any)."""
    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)        # parent node, -1 = the root (newest committed token)
    q: list[float] = field(default_factory=list)            # draft probability of the node's token given its parent
    p: list[float | None] = field(default_factory=list)     # target probability given its ancestors (None: pruned)
    states: list[str] = field(default_factory=list)         # accepted / rejected / unreached / pruned (NODE_*)
    rounds: list[int] = field(default_factory=list)         # the draft round that made the node (the view grows by it)
    texts: list[str] = field(default_factory=list)          # decoded text of each node's token


@dataclass
class CanvasRecord:
    """Diffusion: the step's `tokens` land at canvas `positions` (0 = first generated position), in any order; after
    the step, the whole canvas: committed tokens, and the model's newest guess at each still-masked position."""
    positions: list[int] = field(default_factory=list)
    guess: list[int] = field(default_factory=list)
    conf: list[float] = field(default_factory=list)         # probability of each committed token or guess
    texts: list[str] = field(default_factory=list)          # decoded text of each `guess` token
    margin: float | None = None          # SchED: mean top-1 minus top-2 logit margin over the block


@dataclass
class DagRecord:
    """DA-Transformer: the graph one parallel pass built, and the path decoding chose through it. Vertex j's likeliest
    tokens, the probability that a path passes through it, the transitions at least 1% likely."""
    top: list[list[int]] = field(default_factory=list)
    top_p: list[list[float]] = field(default_factory=list)
    top_texts: list[list[str]] = field(default_factory=list)
    passing: list[float] = field(default_factory=list)
    edges: list[list] = field(default_factory=list)         # [from, to, probability]
    path: list[int] = field(default_factory=list)           # the decoded path's vertices, 0 first


@dataclass
class Step:
    """One target verification: what the draft proposed, what the target decided, and what got committed.

    The fields every method fills are here; a tree, a diffusion canvas or a DAG is in its own sub-record (at most
    one of `tree`, `canvas`, `dag`), and `kind` says which. The stored form is storage/payload.py's."""
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
    layers: int = 0                      # layer-skipping and feature drafts: decoder layers of the model (target)
    tapped: list[int] = field(default_factory=list)  # feature drafts (eagle): the target's layers whose output the
                                         # draft head reads (the last one's after the final norm, as the LM head does)
    target_forwards: int = 1
    draft_forwards: int = 0
    draft_s: float = 0.0
    target_s: float = 0.0
    other_s: float = 0.0                 # the rest of the step (acceptance test, sampling, bookkeeping); the engine
                                         # sets it: the step's whole time less draft_s and target_s
    texts: list[str] = field(default_factory=list)          # decoded text of each committed token
    drafted_texts: list[str] = field(default_factory=list)  # decoded text of each drafted token
    tree: TreeRecord | None = None       # tree methods: the whole draft tree
    canvas: CanvasRecord | None = None   # diffusion: where the tokens landed, and the canvas after the step
    dag: DagRecord | None = None         # DA-Transformer: the graph and the decoded path (dag; gad's first step)

    def __post_init__(self):
        if sum(family is not None for family in (self.tree, self.canvas, self.dag)) > 1:
            raise ValueError("a step carries at most one of tree, canvas and dag")

    @property
    def kind(self) -> str:
        """Which family the step belongs to, one of KINDS: what views dispatch on."""
        for kind, record in ((TREE, self.tree), (CANVAS, self.canvas), (DAG, self.dag)):
            if record is not None:
                return kind
        return CHAIN

    @property
    def seconds(self) -> float:
        """The method's own time for this step: drafting, the target's forwards and the rest."""
        return self.draft_s + self.target_s + self.other_s

    @property
    def number(self) -> int:
        """The step as people count, from 1 (index counts from 0): what every view shows."""
        return self.index + 1

    @property
    def proposed(self) -> int:
        """Drafted tokens the target verified: a tree's verified nodes, else the drafted chain."""
        if self.tree is not None:
            return sum(state != "pruned" for state in self.tree.states)
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
    not_stored: str | None = None  # why the recorder could not store this run (its database failed); else None


Event = RunStarted | Step | RunFinished


def output_ids(steps: list[Step], eos_id: int | None = None) -> list[int]:
    """The generated ids: committed tokens in step order, or, for a canvas (diffusion), in position order, ending
    at the first end-of-text (after it a diffusion model writes padding)."""
    if not any(s.kind == CANVAS for s in steps):
        return [t for s in steps for t in s.tokens]
    at = {i: t for s in steps if s.canvas is not None for i, t in zip(s.canvas.positions, s.tokens)}
    ids = []
    for i in range(max(at, default=-1) + 1):
        if i not in at:  # a run stopped before the canvas was full
            break
        ids.append(at[i])
        if at[i] == eos_id:
            break
    return ids

