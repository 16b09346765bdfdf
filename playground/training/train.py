"""Train the shipped tiny models on the Python standard library of the running interpreter.

    python -m playground.training.train tokenizer          # byte-level BPE, shared by every shipped model
    python -m playground.training.train target [--steps N] # Llama-style causal LM -> assets/models/tiny-code
    python -m playground.training.train draft [--steps N]  # 2-layer draft distilled from the target -> tiny-code-draft
    python -m playground.training.train diffusion          # masked-diffusion EuroBERT -> tiny-code-diffusion
    python -m playground.training.train corpus [--pack F]  # stdlib + pinned PyPI packages, tokenized (data.corpus)
    python -m playground.training.train diffusion-corpus   # the diffusion model on that corpus, sized for a GPU
    python -m playground.training.train distill            # tiny-code's continuations of training prompts (.cache/)
    python -m playground.training.train diffusion-distilled  # second stage: the diffusion model, trained on them
    python -m playground.training.train draft-distilled    # second stage: the draft, distilled on them
    python -m playground.training.train deep               # 24 x 128 target distilled from tiny-code -> tiny-code-deep
    python -m playground.training.train deep-draft         # its 2-layer draft, cut from it and distilled
    python -m playground.training.train block              # block diffusion from all of tiny-code -> tiny-code-block
    python -m playground.training.train learn2pd [--model M]  # Learn2PD's unmasking filter beside a diffusion model
    python -m playground.training.train dparallel          # dParallel distillation -> tiny-code-diffusion-dparallel
    python -m playground.training.train eagle              # EAGLE head on tiny-code's features -> tiny-code-eagle
    python -m playground.training.train eagle --distilled 0.5   # ... then fine-tuned on the target's own text
    python -m playground.training.train prompts            # held-out prompt suites -> assets/prompts/*.jsonl
    python -m playground.training.train card [--only causal|diffusion|eagle|block]  # measure the models, write cards

Training is resumable: a checkpoint is written to checkpoints/<name>/ every `ckpt_every_s` seconds and picked up on the
next start. Data order depends only on (seed, step), so a resumed run sees the same batches as an unbroken one.

The parts, beside this command line: configs.py (the presets), tokenizer.py, lm.py (the causal LMs and their
losses), diffusion.py (the masked-diffusion model), distill.py (the teacher's continuations), hardware.py (bf16 where
the machine has it), loop.py (the training loop, checkpoints, the model folder), cards.py (the model cards).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch

from playground.data import corpus
from playground.errors import OneLineParser
from playground.training import cards, distill
from playground.training.configs import CKPT_DIR, PRESETS, TokenizerConfig
from playground.training.loop import checkpoint_path, train_lm
from playground.training.tokenizer import load_tokenizer, train_tokenizer


def build_corpus(pack: Path | None, unpack: Path | None) -> None:
    tokenizer = load_tokenizer()
    if unpack:
        corpus.unpack(tokenizer, unpack)
    note = corpus.manifest(tokenizer) or corpus.build(tokenizer)
    for row in note["packages"]:
        print(f"{row['name']:>16} {row['version']:<10} {row['licence']:<28} {row['train_files']:>5} + "
              f"{row['heldout_files']:>4} files  {row['train_tokens']:>10,} + {row['heldout_tokens']:>9,} tokens")
    print(f"train {note['train_tokens']:,} tokens, held-out {note.get('heldout_tokens', 0):,} (standard library "
          f"and packages together)")
    if pack:
        print(f"packed to {corpus.pack(tokenizer, pack)} ({pack.stat().st_size / 2**20:.1f} MiB)")


def write_cards(only: str | None) -> None:
    """The model cards: the causal models' (tiny-code's pair, the deep pair), the diffusion model's, the EAGLE
    head's, or all."""
    if only in (None, "causal"):
        cards.write_cards()
    if only in (None, "diffusion"):
        cards.write_diffusion_card()
    if only in (None, "eagle"):
        from playground.training.cards_eagle import write_eagle_card
        write_eagle_card()
    if only in (None, "block"):
        from playground.training.cards_block import write_block_card
        write_block_card()


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m playground.training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["tokenizer", "target", "draft", "diffusion", "diffusion-corpus", "corpus",
                                         "distill", "draft-distilled", "diffusion-distilled", "deep", "deep-draft",
                                         "eagle", "block", "learn2pd", "dparallel", "prompts", "card"])
    parser.add_argument("--steps", type=int, help="total optimiser steps (default: the config's)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the config's)")
    parser.add_argument("--minutes", type=float, help="wall-clock budget; steps are cut to what fits")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pack", type=Path, help="corpus: also write what training elsewhere needs to this file")
    parser.add_argument("--unpack", type=Path, help="corpus: restore a packed corpus under .cache/ instead")
    parser.add_argument("--only", choices=["causal", "diffusion", "eagle", "block"],
                        help="card: only the causal models' cards (tiny-code, tiny-code-draft), the diffusion one's, "
                             "the EAGLE head's or the block-diffusion model's")
    parser.add_argument("--distilled", type=float, metavar="FRACTION",
                        help="eagle: fine-tune the shipped head, FRACTION of the steps on the target's own greedy "
                             "continuations (`train distill` makes them)")
    parser.add_argument("--model", default="tiny-code-diffusion",
                        help="learn2pd: the diffusion model whose filter to train (default: tiny-code-diffusion)")
    parser.add_argument("--targets", choices=["own", "data"], default="own",
                        help="dparallel: learn the base model's own slow outputs (dParallel) or the files' text")
    parser.add_argument("--certainty", type=float, default=0.2,
                        help="dparallel: weight of the entropy of the masked tokens predicted right")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: every core; 1 is steadier on a "
                                                    "machine shared with other work)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.what == "tokenizer":
        train_tokenizer(TokenizerConfig())
    elif args.what == "corpus":
        build_corpus(args.pack, args.unpack)
    elif args.what == "distill":
        distill.teacher_continuations(distill.DistillConfig(), load_tokenizer(), torch.device(args.device))
    elif args.what == "eagle":
        from playground.training.eagle import EagleTrainConfig, train_eagle
        cfg = EagleTrainConfig(minutes=args.minutes)
        if args.distilled is not None:  # fine-tune the shipped head, gently, on a share of the target's own text
            cfg = EagleTrainConfig(minutes=args.minutes, distilled=args.distilled, init=cfg.name, lr=3e-4, warmup=20)
        cfg.steps = args.steps or cfg.steps
        cfg.batch_size = args.batch_size or cfg.batch_size
        if args.fresh:
            shutil.rmtree(CKPT_DIR / "eagle", ignore_errors=True)
        train_eagle(cfg)
    elif args.what == "dparallel":
        from playground.training.dparallel import DParallelConfig, train_dparallel
        cfg = DParallelConfig(targets=args.targets, certainty=args.certainty)
        cfg.steps = args.steps or cfg.steps
        train_dparallel(cfg)
    elif args.what == "learn2pd":
        from playground.training.learn2pd import FilterConfig, train_filter
        train_filter(FilterConfig(model=args.model))
    elif args.what == "prompts":
        cards.write_prompts()
    elif args.what == "card":
        write_cards(args.only)
    else:
        cfg = PRESETS[args.what]
        cfg.steps = args.steps or cfg.steps
        cfg.batch_size = args.batch_size or cfg.batch_size
        cfg.minutes = args.minutes
        if args.fresh:
            shutil.rmtree(checkpoint_path(cfg).parent, ignore_errors=True)
        train_lm(cfg, args.device)


if __name__ == "__main__":
    main()
