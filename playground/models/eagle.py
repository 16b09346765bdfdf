"""An EAGLE draft head (Li et al. 2024, arXiv 2401.15077): one decoder layer that drafts from the target's features.

Row t of the head reads the target's feature at row t-1 (its final, normed hidden state: what its LM head reads)
and the embedding of token t, fused by one linear map, and predicts the target's feature at row t:

    f^_t = Block(fc([f_{t-1}; E x_t]))       p(x_{t+1}) = softmax(LMhead(f^_t))

Drafting further, the head reads its own f^ where the target's f is not known yet. It shares the target's embedding
E and LM head, so it ships with its fc and its block only (about 0.9M parameters for tiny-code's width), and
it is a transformers model like the others: `AutoModel.from_pretrained("assets/models/tiny-code-eagle")`.
`target` in its config names the model whose features it was trained on.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from playground.models.lean import Block, LeanConfig


class EagleConfig(PretrainedConfig):
    model_type = "eagle-head"

    def __init__(self, hidden_size: int = 256, intermediate_size: int = 704, num_attention_heads: int = 4,
                 num_key_value_heads: int = 4, head_dim: int = 64, rms_norm_eps: float = 1e-6,
                 rope_theta: float = 10000.0, max_position_embeddings: int = 1024, vocab_size: int = 4096,
                 target: str = "tiny-code", **kwargs):
        self.hidden_size, self.intermediate_size = hidden_size, intermediate_size
        self.num_attention_heads, self.num_key_value_heads, self.head_dim = (num_attention_heads,
                                                                             num_key_value_heads, head_dim)
        self.rms_norm_eps, self.rope_theta = rms_norm_eps, rope_theta
        self.max_position_embeddings, self.vocab_size, self.target = max_position_embeddings, vocab_size, target
        super().__init__(**kwargs)

    @staticmethod
    def for_target(config, target: str) -> EagleConfig:
        """A head as wide as the transformers config `config` of the target named `target`."""
        lean = LeanConfig.from_hf(config)
        return EagleConfig(hidden_size=lean.hidden, intermediate_size=lean.intermediate,
                           num_attention_heads=lean.heads, num_key_value_heads=lean.kv_heads,
                           head_dim=lean.head_dim, rms_norm_eps=lean.eps, rope_theta=lean.rope_theta,
                           max_position_embeddings=lean.max_positions, vocab_size=lean.vocab, target=target)

    def lean(self) -> LeanConfig:
        return LeanConfig(hidden=self.hidden_size, heads=self.num_attention_heads,
                          kv_heads=self.num_key_value_heads, head_dim=self.head_dim,
                          intermediate=self.intermediate_size, eps=self.rms_norm_eps, rope_theta=self.rope_theta,
                          qkv_bias=False, layers=1, vocab=self.vocab_size,
                          max_positions=self.max_position_embeddings)


class EagleHead(PreTrainedModel):
    config_class = EagleConfig
    base_model_prefix = "eagle"
    main_input_name = "features"

    def __init__(self, config: EagleConfig):
        super().__init__(config)
        h = config.hidden_size
        self.fc = nn.Linear(2 * h, h)
        self.block = Block(config.lean())
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, Block):
            for name, p in module.named_parameters():
                if name.endswith("norm"):
                    nn.init.ones_(p)
                elif "bias" in name:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, std=0.02)

    def get_output_embeddings(self):
        return None  # the target's LM head is used

    def forward(self, features: torch.Tensor, embeds: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                keys: torch.Tensor | None = None, values: torch.Tensor | None = None, start: int = 0,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """features, embeds [b, n, h] (the target's f_{t-1} and E x_t of each row) -> predicted f^_t [b, n, h].
        cos/sin [n, hd] of the rows' positions; keys/values/start/mask: the head's cache and attention, as for
        `models.lean.Block` (None: causal over the n rows, for training)."""
        x = self.fc(torch.cat([features, embeds], dim=-1))  # [b, n, h]
        return self.block(x, cos, sin, keys, values, start, mask)


def is_eagle(model) -> bool:
    return isinstance(getattr(model, "config", None), EagleConfig)


AutoConfig.register(EagleConfig.model_type, EagleConfig)
AutoModel.register(EagleConfig, EagleHead)
