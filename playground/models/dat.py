"""The Directed Acyclic Transformer (Huang et al. 2022, "Directed Acyclic Transformer for Non-Autoregressive
Machine Translation") as a transformers model, registered with the Auto classes so `from_pretrained` loads it.

An encoder reads the source. The decoder has L = lambda x (source length) vertices, all computed in one parallel
pass from a uniform copy of the encoder states plus learned vertex embeddings (plus, in glancing training, the
embeddings of some gold tokens): each vertex j
gives a token distribution P(y | v_j) and transition probabilities E[j, k] to every later vertex k. An output is
a path from vertex 0 to vertex L-1 emitting one token per visited vertex; `playground.runtime.dag_graph` decodes it.

With `graph=False` the same network is a plain non-autoregressive translator (Gu et al. 2018): as many vertices as
the predicted target length, vertex i emits output token i, no transitions. It is the DAG-free baseline.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

NEG = -1e9  # log-probability of a transition that does not exist (finite: a vertex with no successor stays NaN-free)


class DatConfig(PretrainedConfig):
    model_type = "da-transformer"

    def __init__(self, vocab_size: int = 88, d_model: int = 128, heads: int = 4, ffn: int = 512,
                 encoder_layers: int = 3, decoder_layers: int = 3, dropout: float = 0.0,
                 max_source_positions: int = 64, graph: bool = True, upsample: int = 4, max_vertices: int = 256,
                 max_target_length: int = 32, pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2,
                 **kwargs):
        self.vocab_size, self.d_model, self.heads, self.ffn = vocab_size, d_model, heads, ffn
        self.encoder_layers, self.decoder_layers, self.dropout = encoder_layers, decoder_layers, dropout
        self.max_source_positions = max_source_positions
        self.graph = graph                        # False: plain NAT, one vertex per target token
        self.upsample = upsample                  # lambda: vertices per source token
        self.max_vertices = max_vertices
        self.max_target_length = max_target_length  # NAT: the length head's classes
        kwargs["is_encoder_decoder"] = True
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)


@dataclass
class DatOutput(ModelOutput):
    token_logprobs: torch.Tensor = None   # [B, L, V] log P(y | v_j)
    links: torch.Tensor | None = None     # [B, L, L] log E[j, k] (NEG where k <= j or beyond the graph); DAG only
    vertex_mask: torch.Tensor = None      # [B, L] True for real vertices
    length_logits: torch.Tensor | None = None  # [B, max_target_length] (NAT only)


class Attention(nn.Module):
    """Multi-head attention: self-attention over x (queries, keys and values from one projection), or
    cross-attention of x over `source` (the encoder's states)."""

    def __init__(self, d: int, heads: int, dropout: float, cross: bool = False):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.project = nn.Linear(d, d if cross else 3 * d)  # queries (self-attention: and keys and values)
        self.key_value = nn.Linear(d, 2 * d) if cross else None
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, source: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        if self.key_value is None:
            q, k, v = linear(self.project, x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        else:
            q = linear(self.project, x).view(b, n, self.heads, -1).transpose(1, 2)
            k, v = linear(self.key_value, source).view(b, source.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return linear(self.out, y.transpose(1, 2).reshape(b, n, d))


def linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` without nn.Module's call machinery (hooks, dispatch): the same op, and at batch size 1 on a CPU
    the calls' overhead was a fifth of the DAT's whole pass (docs/BENCHMARKS.md, "DAG decoding")."""
    return F.linear(x, layer.weight, layer.bias)


def norm(layer: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` without nn.Module's call machinery, like `linear`."""
    return F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias, layer.eps)


class Block(nn.Module):
    """A pre-norm transformer layer: self-attention, cross-attention over the encoder's states (decoder only), MLP.
    Written out rather than nn.TransformerEncoderLayer/DecoderLayer: at batch size 1 on a CPU, the library layers'
    mask handling and dispatch made the whole forward about a fifth slower (docs/BENCHMARKS.md, "DAG decoding")."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float, cross: bool):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(d), Attention(d, heads, dropout)
        self.norm2, self.cross = (nn.LayerNorm(d), Attention(d, heads, dropout, cross=True)) if cross else (None, None)
        self.norm3, self.up, self.down = nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask, memory=None, memory_mask=None):
        drop = self.drop if self.training else unchanged  # in eval a plain function: cheaper than a module call
        x = x + drop(self.attention.forward(norm(self.norm1, x), mask))
        if self.cross is not None:
            x = x + drop(self.cross.forward(norm(self.norm2, x), memory_mask, memory))
        return x + drop(linear(self.down, drop(F.relu(linear(self.up, norm(self.norm3, x))))))


def unchanged(x: torch.Tensor) -> torch.Tensor:
    return x


def key_mask(real: torch.Tensor) -> torch.Tensor | None:
    """[B, 1, 1, S] keys to attend to, or None when there is no padding (batch size 1: the fast path)."""
    return None if bool(real.all()) else real[:, None, None, :]


class DatModel(PreTrainedModel):
    config_class = DatConfig
    base_model_prefix = "dat"
    main_input_name = "input_ids"

    def __init__(self, config: DatConfig):
        super().__init__(config)
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.source_positions = nn.Embedding(config.max_source_positions, d)
        self.vertex_positions = nn.Embedding(config.max_vertices, d)

        def blocks(count, cross):
            return nn.ModuleList(Block(d, config.heads, config.ffn, config.dropout, cross) for _ in range(count))
        self.encoder, self.encoder_norm = blocks(config.encoder_layers, cross=False), nn.LayerNorm(d)
        self.decoder, self.decoder_norm = blocks(config.decoder_layers, cross=True), nn.LayerNorm(d)
        self.link_query_key = nn.Linear(d, 2 * d)
        self.length_head = nn.Linear(d, config.max_target_length) if not config.graph else None
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def vertex_counts(self, source_mask: torch.Tensor) -> torch.Tensor:
        """Graph size per example: lambda x source length, capped by the vertex embeddings."""
        return (source_mask.sum(1) * self.config.upsample).clamp(max=self.config.max_vertices)

    def encode(self, input_ids: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) * math.sqrt(self.config.d_model) + self.source_positions(positions)
        mask = key_mask(source_mask)
        for block in self.encoder:
            x = block.forward(x, mask)
        return norm(self.encoder_norm, x)

    def predicted_lengths(self, memory: torch.Tensor, source_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NAT: the length head's logits and its argmax (at least 2: <s> and </s>)."""
        pooled = (memory * source_mask[..., None]).sum(1) / source_mask.sum(1, keepdim=True)
        logits = self.length_head(pooled)
        return logits, logits.argmax(-1).clamp(min=2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                vertices: torch.Tensor | None = None, glance: torch.Tensor | None = None, **_) -> DatOutput:
        """`vertices`: graph size (DAG) or target length (NAT) per example; by default lambda x source length, or
        the predicted length. `glance`: [B, L] gold token ids fed into chosen vertices, -1 elsewhere (training)."""
        source_mask = attention_mask.bool() if attention_mask is not None else input_ids != self.config.pad_token_id
        memory = self.encode(input_ids, source_mask)
        length_logits = None
        if not self.config.graph:
            length_logits, guessed = self.predicted_lengths(memory, source_mask)
            vertices = guessed if vertices is None else vertices
        elif vertices is None:
            vertices = self.vertex_counts(source_mask)
        size = int(vertices.max())
        vertex_mask = torch.arange(size, device=input_ids.device)[None] < vertices[:, None]
        h = self.copied_source(memory, source_mask, vertices, size) + self.vertex_positions(
            torch.arange(size, device=input_ids.device))[None]
        if glance is not None:
            chosen = glance[:, :size] >= 0
            h = torch.where(chosen[..., None], h + self.embed(glance[:, :size].clamp(min=0)), h)
        mask, memory_mask = key_mask(vertex_mask), key_mask(source_mask)
        for block in self.decoder:
            h = block.forward(h, mask, memory, memory_mask)
        h = norm(self.decoder_norm, h)
        token_logprobs = torch.log_softmax(h @ self.embed.weight.T, dim=-1)
        links = self.links(h, vertex_mask) if self.config.graph else None
        return DatOutput(token_logprobs=token_logprobs, links=links, vertex_mask=vertex_mask,
                         length_logits=length_logits)

    @staticmethod
    def copied_source(memory: torch.Tensor, source_mask: torch.Tensor, vertices: torch.Tensor,
                      size: int) -> torch.Tensor:
        """Uniform copy (Gu et al. 2018; DA-Transformer's decoder input): vertex j of L starts from the encoder
        state of source position floor(j * S / L), so each vertex knows which part of the source it sits over."""
        j = torch.arange(size, device=memory.device)[None]
        lengths = source_mask.sum(1, keepdim=True)
        index = torch.minimum(j * lengths // vertices[:, None].clamp(min=1), lengths - 1)
        return memory.gather(1, index[..., None].expand(-1, -1, memory.shape[-1]))

    def links(self, h: torch.Tensor, vertex_mask: torch.Tensor) -> torch.Tensor:
        """log E[j, k]: attention-like scores between vertex states, softmax over the later vertices k > j."""
        query, key = linear(self.link_query_key, h).chunk(2, dim=-1)
        scores = query @ key.transpose(1, 2) / math.sqrt(self.config.d_model)
        size = h.shape[1]
        allowed = later_than(size, h.device)[None] & vertex_mask[:, None, :]
        # the last vertex (and padding) has no successor: its row stays NEG rather than a uniform softmax of NEGs
        return torch.log_softmax(scores.masked_fill(~allowed, NEG), dim=-1).masked_fill(~allowed, NEG)


@functools.lru_cache(maxsize=64)
def later_than(size: int, device: torch.device) -> torch.Tensor:
    """[size, size] True where k > j: made once per graph size (read only)."""
    with torch.inference_mode(False):  # a plain tensor: training may read it too
        return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


AutoConfig.register(DatConfig.model_type, DatConfig)
AutoModel.register(DatConfig, DatModel)


def is_dat(model) -> bool:
    return getattr(model.config, "model_type", None) == DatConfig.model_type
