"""What each shipped LM is trained with: the tokenizer's, the model's and the run's settings, one preset per command.

A preset is a TrainConfig; `python -m playground.training.train NAME` picks one (see train.main) and may override
its steps, batch size and wall-clock budget. Checkpoints go to checkpoints/<name>/, the models to assets/models/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playground.training.distill import DistillConfig

CKPT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass
class TokenizerConfig:
    vocab_size: int = 4096
    min_frequency: int = 2


@dataclass
class ModelConfig:
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 704
    max_position_embeddings: int = 1024


@dataclass
class TrainConfig:
    name: str = "tiny-code"
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 512
    batch_size: int = 6
    steps: int = 480
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 60
    weight_decay: float = 0.1
    ckpt_every_s: float = 120.0
    eval_every: int = 200
    eval_windows: int = 48
    seed: int = 1234
    teacher: str | None = None  # set for distillation: the draft learns the teacher's next-token distributions
    # LayerSkip (arXiv 2404.16710): per-sample sub-layer dropout rising to `layer_dropout` at the last layer, plus
    # the LM head's loss on the output of `early_exit_layers` random intermediate layers per step, so that drafts
    # made by skipping layers (self_speculative, early_exit) agree with the full model more often.
    layer_dropout: float = 0.0
    early_exit_weight: float = 0.0
    early_exit_layers: int = 2
    repeat_fraction: float = 0.0  # windows that end by repeating their own last stretch (see lm.batch_at)
    minutes: float | None = None  # wall-clock budget: cut `steps` to what fits, measured over the first steps
    keep_best: bool = True  # early stopping: end with the weights of the evaluation with the lowest held-out loss
    objective: str = "next_token"  # or "diffusion": masked diffusion (LLaDA / MDLM) on a bidirectional encoder
    min_prefix: int = 16  # diffusion: the prompt part of a window, never masked, is min_prefix..max_prefix tokens
    max_prefix: int = 128
    end_fraction: float = 0.3  # diffusion: windows whose continuation ends early at a line end (diffusion_batch_at)
    init: str | None = None  # diffusion: start from this shipped causal LM (see build_diffusion_model)
    start: str | None = None  # continue from all the weights of this shipped model (a second training stage)
    # Distillation only: also train the LM head read after the first `exit_layer` layers (weight `exit_weight`), so
    # that those layers, cut off as a model of their own, start as a draft that already agrees with the full model.
    exit_layer: int = 0
    exit_weight: float = 0.0
    # Sequence-level distillation (training/distill.py): train on the teacher's greedy continuations instead of
    # the stdlib text, but for a `natural_fraction` of the steps, and keep the weights that do best on held-out
    # continuations.
    distilled: bool = False
    natural_fraction: float = 0.25
    block_size: int = 32  # block: the block diffusion's block (attention both ways inside, causal across)
    corpus: str = "stdlib"  # or "corpus": the standard library plus the packages of playground.data.corpus


TARGET = TrainConfig(batch_size=48, steps=3600, warmup=100, layer_dropout=0.2, early_exit_weight=0.3,
                     repeat_fraction=0.25)
DRAFT = TrainConfig(
    name="tiny-code-draft",
    # On a CPU at batch size 1 a layer's cost is mostly fixed overhead, not width: 2 full-width layers cost about
    # a fifth of the 12-layer target and agree with it far more often than 1 narrow layer.
    model=ModelConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=704),
    batch_size=48, steps=3000, lr=3e-3, warmup=100, teacher="tiny-code", repeat_fraction=0.25,
)
DIFFUSION = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion",
    model=ModelConfig(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=704,
                      max_position_embeddings=1024),
    seq_len=256, batch_size=32, steps=2400, lr=5e-4, warmup=50, eval_every=100, init="tiny-code", end_fraction=0.05,
)
# The same model trained with a GPU's compute on the larger corpus: 8x the batch, the schedule cut by --minutes.
DIFFUSION_CORPUS = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion", model=DIFFUSION.model, corpus="corpus",
    seq_len=256, batch_size=256, steps=40000, lr=1e-3, warmup=200, eval_every=500, init="tiny-code",
    end_fraction=0.05, ckpt_every_s=60.0,
)

DIFFUSION_DISTILLED = TrainConfig(
    name="tiny-code-diffusion", objective="diffusion", model=DIFFUSION.model, start="tiny-code-diffusion",
    distilled=True, seq_len=256, batch_size=32, steps=900, lr=3e-4, warmup=20, eval_every=100, end_fraction=0.05,
)
DRAFT_DISTILLED = TrainConfig(
    name="tiny-code-draft", model=DRAFT.model, start="tiny-code-draft", teacher="tiny-code", distilled=True,
    seq_len=256, batch_size=32, steps=200, lr=5e-4, warmup=20, eval_every=50, repeat_fraction=0.25,
)
HELDOUT_DISTILLED = DistillConfig(rows=256, group=32, split="heldout")

# A deep, narrow target and its draft. On a CPU at batch size 1 a forward's cost is mostly fixed work per layer, not
# arithmetic, so a 24 x 128 target costs about what the 12 x 256 one does per token, but scores a 16-node tree for
# 1.4x one token (1.7x for tiny-code), and a 2 x 128 draft costs a tenth of it (docs/BENCHMARKS.md, "A deep, narrow
# pair, trained"): the shape that should favour draft trees on this hardware. The target learns tiny-code's
# next-token distributions (KL, which teaches a small student faster than the text alone on a CPU budget) and
# those of an early exit after 2 layers; the draft starts as those 2 layers and learns the deep target's.
DEEP = TrainConfig(
    name="tiny-code-deep", model=ModelConfig(hidden_size=128, num_hidden_layers=24, num_attention_heads=4,
                                             intermediate_size=352),
    teacher="tiny-code", exit_layer=2, exit_weight=0.5, batch_size=8, steps=1750, lr=2e-3, warmup=100,
    repeat_fraction=0.25, ckpt_every_s=300.0,
)
DEEP_DRAFT = TrainConfig(
    name="tiny-code-deep-draft", model=ModelConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                                   intermediate_size=352),
    init="tiny-code-deep", teacher="tiny-code-deep", batch_size=16, steps=492, lr=1e-3, warmup=20,
    repeat_fraction=0.25, ckpt_every_s=300.0,
)

# Block diffusion (training/block.py, Fast-dLLM v2): all 12 layers of tiny-code, fine-tuned on [noisy ; clean] rows.
BLOCK = TrainConfig(
    name="tiny-code-block", objective="block", init="tiny-code", block_size=32, seq_len=256, batch_size=4,
    steps=2000, lr=3e-4, warmup=10, eval_every=50, eval_windows=8, end_fraction=0.05, ckpt_every_s=60.0,
)

# The presets `python -m playground.training.train NAME` trains.
PRESETS = {"target": TARGET, "draft": DRAFT, "diffusion": DIFFUSION, "diffusion-corpus": DIFFUSION_CORPUS,
           "draft-distilled": DRAFT_DISTILLED, "diffusion-distilled": DIFFUSION_DISTILLED, "deep": DEEP,
           "deep-draft": DEEP_DRAFT, "block": BLOCK}
