"""DAG decoding and generalized aggressive decoding, on the number translators (playground.dat, playground.dag).

`dag`: one parallel pass of a DA-Transformer builds the graph; a strategy (greedy, lookahead, viterbi, beam with an
optional bigram LM) picks the path. Lossy: it is not the autoregressive model's output. On a plain NAT the path is
fixed (every vertex in order) and the strategy does not matter.

`gad` (generalized aggressive decoding; Ge et al. 2022, "Lossless Acceleration for Seq2seq Generation with
Aggressive Decoding", and Xia et al. 2023): the DAG's output is the draft; the autoregressive encoder-decoder
verifies the whole draft in one forward and keeps it up to the first token where its own greedy choice differs,
and that token. The next draft is read off the same graph: from the last accepted vertex, the vertex most likely to
emit the corrected token, then lookahead from there. Identical to autoregressive greedy decoding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from playground.events import TARGET, DagRecord, Step
from playground.methods.base import (
    DecodeConfig,
    Method,
    Param,
    Progress,
    accepted_prefix,
    clip_to_budget,
    commit_verified,
    step_counters,
)
from playground.runtime.dag_graph import (
    STRATEGIES,
    DagRunner,
    Decoded,
    Graph,
    emit,
    follow,
    lookahead_successors,
    rounded,
)
from playground.runtime.lm import CachedSeq2Seq


def graph_record(decoded: Decoded) -> DagRecord:
    """What a Step records of the graph: each vertex's top tokens and passing probability, the likely transitions,
    the chosen path."""
    top, top_p = decoded.graph.top_tokens()
    return DagRecord(top=top, top_p=top_p, passing=rounded(decoded.graph.passing()).tolist(),
                     edges=decoded.graph.edges(), path=list(decoded.path))


def emitted_probs(graph: Graph, path: list[int], tokens: list[int]) -> list[float]:
    return [math.exp(float(graph.token_logprobs[v, t])) for v, t in zip(path, tokens)]


def dag(target: DagRunner, draft, prompt_ids: list[int], cfg: DecodeConfig, strategy: str = "lookahead",
        beam: int = 4, lm_weight: float = 0.0) -> Iterator[Step]:
    """One forward, one Step: the path's tokens after <s>."""
    decoded = target.decode(prompt_ids, strategy, width=beam, lm_weight=lm_weight)
    tokens, _ = clip_to_budget(decoded.tokens[1:], 0, cfg)
    forwards, seconds = target.take_counters()
    yield Step(index=0, tokens=tokens, sources=[TARGET] * len(tokens),
               p=emitted_probs(decoded.graph, decoded.path[1:], tokens), q=[None] * len(tokens),
               target_forwards=forwards, target_s=seconds, dag=graph_record(decoded))


def redraft(graph: Graph, successor: list[int], after: int, token: int) -> tuple[int, list[int], list[int]]:
    """A new draft after the verifier's correction `token`: the vertex after `after` likeliest to emit it (by
    transition and token), then lookahead from there. Returns that vertex, and the draft's vertices and tokens."""
    if after >= graph.size - 1:  # the graph is used up: the verifier goes on one token per forward
        return after, [], []
    vertex = int((graph.links[after] + graph.token_logprobs[:, token]).argmax())
    path = follow(graph, successor, start=vertex)[1:]
    return vertex, path, emit(graph, path)


def gad(target: CachedSeq2Seq, draft: DagRunner, prompt_ids: list[int], cfg: DecodeConfig) -> Iterator[Step]:
    """One Step per verification; the first also records the graph the draft came from."""
    decoded = draft.decode(prompt_ids, "lookahead")
    graph, successor, run = decoded.graph, lookahead_successors(decoded.graph), Progress([])
    vertices, proposal = decoded.path[1:], decoded.tokens[1:]
    anchor = 0  # the vertex of the newest committed token (or the one the verifier's correction was placed at)
    target.encode(prompt_ids)
    feed = [target.model.config.decoder_start_token_id]
    while not run.done:
        before = target.length
        logits = target.forward(feed + proposal, keep=len(proposal) + 1)
        choice = logits.argmax(-1).tolist()
        accepted = accepted_prefix(proposal, choice)
        fix = choice[accepted]
        tokens, sources, done = commit_verified(proposal[:accepted], fix, len(proposal), run.produced, cfg)
        p = logits.softmax(-1)
        yield Step(index=run.index, tokens=tokens, sources=sources, p=[float(p[i, t]) for i, t in enumerate(tokens)],
                   q=[None] * len(tokens), drafted=list(proposal), accepted=accepted, gamma=len(proposal),
                   draft_p=[float(p[i, t]) for i, t in enumerate(proposal)],
                   draft_q=emitted_probs(graph, vertices, proposal), **step_counters(target, draft),
                   dag=graph_record(decoded) if run.index == 0 else None)
        target.crop(before + len(feed) + accepted)  # keep what was fed and the accepted draft; `fix` comes next
        run.advance(tokens, done)
        feed = [fix]
        anchor, vertices, proposal = redraft(graph, successor, vertices[accepted - 1] if accepted else anchor, fix)


STRATEGY = Param("strategy", "lookahead", "how to pick the path through the graph", choices=STRATEGIES)
METHOD = Method(
    name="dag",
    summary="DA-Transformer: one parallel pass builds a graph of tokens; a strategy picks a path. Not lossless.",
    decode=dag,
    params=(STRATEGY, Param("beam", 4, "beam width (strategy=beam)", min=1, max=32),
            Param("lm_weight", 0.0, "weight of the bigram language model in beam search (0 = off)", min=0.0,
                  max=5.0)),
    lossless=False,
    kinds=("dag",),
    greedy_only=lambda params: True,
)

GAD = Method(
    name="gad",
    summary="Generalized aggressive decoding: the DAG drafts the whole output, the autoregressive model verifies "
            "it in one forward and resumes from the first mismatch. Identical to its greedy output.",
    decode=gad,
    needs_draft=True,
    kinds=("seq2seq",),
    draft_kinds=("dag",),
    greedy_only=lambda params: True,
)
