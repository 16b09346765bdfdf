"""Decoding a DA-Transformer graph: pick a path from vertex 0 to vertex L-1 and the token each visited vertex emits.

The four strategies of the DA-Transformer papers (Huang et al. 2022; Shao et al. 2022, "Viterbi decoding of DAT"):
- greedy: follow the likeliest transition, emit each vertex's likeliest token;
- lookahead: choose the next vertex by transition and token together, argmax_k log E[j,k] + max_y log P(y|v_k);
- viterbi: the jointly best path and tokens, over every path length, normalised by length;
- beam: beam search over (vertex, token) choices, optionally scored with an n-gram language model of the target.
Every strategy returns the visited vertices and the tokens, <s> first and </s> last.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.errors import PlaygroundError
from playground.models.dat import NEG

STRATEGIES = ("greedy", "lookahead", "viterbi", "beam")
TOP = 5               # tokens recorded per vertex
EDGE_FLOOR = 0.01     # transitions recorded when at least this likely


@dataclass
class Graph:
    """One example's graph: log P(y | v_j) as [L, V] and log E[j, k] as [L, L]."""
    token_logprobs: torch.Tensor
    links: torch.Tensor

    @property
    def size(self) -> int:
        return self.token_logprobs.shape[0]

    def passing(self) -> torch.Tensor:
        """Probability that a path drawn by the transitions from vertex 0 visits each vertex: p = e_0 (I + E + E^2
        + ...) = e_0 (I - E)^-1, one triangular solve, since E is strictly upper triangular (a DAG in order)."""
        probs = self.links.exp().triu(1)
        start = torch.zeros(1, self.size)
        start[0, 0] = 1.0
        eye = torch.eye(self.size)
        return torch.linalg.solve_triangular(eye - probs, start, upper=True, left=False)[0]

    def top_tokens(self, k: int = TOP) -> tuple[list[list[int]], list[list[float]]]:
        p, ids = self.token_logprobs.exp().topk(min(k, self.token_logprobs.shape[1]), dim=-1)
        return ids.tolist(), rounded(p).tolist()

    def edges(self, floor: float = EDGE_FLOOR) -> list[list]:
        """[from, to, probability] of every transition at least `floor` likely."""
        probs = self.links.exp()
        j, k = (probs >= floor).nonzero(as_tuple=True)
        return [[a, b, p] for a, b, p in zip(j.tolist(), k.tolist(), rounded(probs[j, k]).tolist())]


def rounded(x: torch.Tensor, digits: int = 4) -> torch.Tensor:
    """Probabilities as the events store them: 4 decimals are plenty to draw and read, and keep the JSON small."""
    return torch.round(x, decimals=digits)


def follow(graph: Graph, successor: list[int], start: int = 0) -> list[int]:
    """The path from `start` taking `successor[j]` after each vertex j, until the last vertex."""
    path, last = [start], graph.size - 1
    while path[-1] != last:
        path.append(successor[path[-1]])
    return path


def emit(graph: Graph, path: list[int]) -> list[int]:
    return graph.token_logprobs[path].argmax(-1).tolist()


def greedy(graph: Graph) -> tuple[list[int], list[int]]:
    path = follow(graph, graph.links.argmax(-1).tolist())
    return path, emit(graph, path)


def lookahead_successors(graph: Graph) -> list[int]:
    """After each vertex j, the k maximising log E[j, k] + max_y log P(y | v_k)."""
    best_token = graph.token_logprobs.max(-1).values
    return (graph.links + best_token[None, :]).argmax(-1).tolist()


def lookahead(graph: Graph) -> tuple[list[int], list[int]]:
    path = follow(graph, lookahead_successors(graph))
    return path, emit(graph, path)


def viterbi(graph: Graph) -> tuple[list[int], list[int]]:
    """Joint Viterbi: for each path length m, the best path's score (transitions plus each vertex's best token);
    then the m with the best score / m."""
    best_token = graph.token_logprobs.max(-1).values
    size = graph.size
    score = torch.full((size,), NEG)
    score[0] = best_token[0]
    back, finals = [], [NEG]  # finals[m-1]: best score of an m-vertex path ending at the last vertex
    for _ in range(1, size):
        totals = score[:, None] + graph.links  # [from, to]
        score, parent = totals.max(0)
        score = score + best_token
        back.append(parent)
        finals.append(float(score[-1]))
    normalised = torch.tensor(finals) / torch.arange(1, size + 1)
    m = int(normalised.argmax()) + 1
    path = [size - 1]
    for step in range(m - 2, -1, -1):
        path.append(int(back[step][path[-1]]))
    path.reverse()
    return path, emit(graph, path)


@dataclass
class Bigram:
    """A bigram language model of target token ids, log P(b | a) as a [V, V] table."""
    logprobs: torch.Tensor

    @classmethod
    def load(cls, path: Path) -> Bigram:
        return cls(torch.tensor(json.loads(path.read_text())["logprobs"]))

    @classmethod
    def fit(cls, sequences: list[list[int]], vocab_size: int, smoothing: float = 0.1) -> Bigram:
        counts = torch.full((vocab_size, vocab_size), smoothing)
        for seq in sequences:
            for a, b in zip(seq, seq[1:]):
                counts[a, b] += 1
        return cls((counts / counts.sum(1, keepdim=True)).log())

    @functools.cached_property
    def table(self) -> list[list[float]]:
        """log P(b | a) as nested lists (read in beam search's inner loop), made once."""
        return self.logprobs.tolist()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"logprobs": [[round(x, 4) for x in row] for row in self.logprobs.tolist()]}))


def beam(graph: Graph, width: int = 4, tokens_per_vertex: int = 2, lm: Bigram | None = None, lm_weight: float = 0.0,
         alpha: float = 1.0) -> tuple[list[int], list[int]]:
    """Beam search over paths, each hypothesis (score, vertices, tokens) extended by its `width` likeliest next
    vertices times their `tokens_per_vertex` likeliest tokens, plus lm_weight x the bigram LM's log-probability of
    the token after the previous one; finished at the last vertex; the best score / length^alpha wins.
    Plain lists inside the loop: a few hundred extensions per graph, each a handful of float additions."""
    last = graph.size - 1
    top_p, top_ids = (t.tolist() for t in graph.token_logprobs.topk(tokens_per_vertex, dim=-1))
    next_p, next_ids = (t.tolist() for t in graph.links.topk(min(width, graph.size), dim=-1))
    bigram = lm.table if lm is not None and lm_weight else None
    hyps = [(top_p[0][0], [0], [top_ids[0][0]])]
    finished = []
    while hyps:
        grown = []
        for score, path, toks in hyps:
            follows = bigram[toks[-1]] if bigram else None
            for e, k in zip(next_p[path[-1]], next_ids[path[-1]]):
                if e <= NEG / 2:
                    continue
                for p, y in zip(top_p[k], top_ids[k]):
                    extra = lm_weight * follows[y] if follows else 0.0
                    grown.append((score + e + p + extra, path + [k], toks + [y]))
        grown.sort(key=lambda h: h[0], reverse=True)
        hyps = []
        for h in grown[: width * 2]:
            (finished if h[1][-1] == last else hyps).append(h)
        hyps = hyps[:width]
        if len(finished) >= width:
            break
    score, path, toks = max(finished, key=lambda h: h[0] / len(h[1]) ** alpha)
    return path, toks


@dataclass
class Decoded:
    path: list[int]
    tokens: list[int]      # emitted by the path, <s> first
    graph: Graph           # choosing the path is not timed here: the engine counts it in the step's other_s


LM_FILE = "bigram.json"  # the target-side bigram LM, shipped beside the model's weights


class DagRunner:
    """A DA-Transformer (or its NAT twin) with counters of how often and how long it ran: one forward per source."""

    def __init__(self, model):
        self.model = model
        self.forwards, self.seconds = 0, 0.0

    @property
    def lm(self) -> Bigram | None:
        """The bigram LM shipped beside the model, if any: read on first use (beam search with lm_weight only)."""
        return bigram_beside(str(getattr(self.model, "name_or_path", "") or ""))

    @torch.inference_mode()
    def graph(self, source_ids: list[int]) -> Graph:
        start = time.perf_counter()
        out = self.model(input_ids=torch.tensor([source_ids], device=next(self.model.parameters()).device))
        size = int(out.vertex_mask[0].sum())
        links = out.links[0, :size, :size].cpu() if out.links is not None else nat_links(size)
        graph = Graph(out.token_logprobs[0, :size].float().cpu(), links.float())
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return graph

    def decode(self, source_ids: list[int], strategy: str = "lookahead", width: int = 4,
               lm_weight: float = 0.0) -> Decoded:
        graph = self.graph(source_ids)
        if not self.model.config.graph:  # a plain NAT: the one path through every vertex
            path, tokens = greedy(graph)
        elif strategy == "beam":
            if lm_weight and self.lm is None:
                raise PlaygroundError(f"lm_weight needs a bigram LM ({LM_FILE}) beside the model; this one has none")
            path, tokens = beam(graph, width=width, lm=self.lm, lm_weight=lm_weight)
        else:
            path, tokens = {"greedy": greedy, "lookahead": lookahead, "viterbi": viterbi}[strategy](graph)
        return Decoded(path, tokens, graph)

    def take_counters(self) -> tuple[int, float]:
        counters = (self.forwards, self.seconds)
        self.forwards, self.seconds = 0, 0.0
        return counters


@functools.lru_cache(maxsize=8)
def bigram_beside(folder: str) -> Bigram | None:
    path = Path(folder) / LM_FILE
    return Bigram.load(path) if folder and path.is_file() else None


def nat_links(size: int) -> torch.Tensor:
    """A NAT's implicit graph: vertex j always goes to j + 1."""
    links = torch.full((size, size), NEG)
    links[torch.arange(size - 1), torch.arange(1, size)] = 0.0
    return links
