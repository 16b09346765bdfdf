"""The model card of `tiny-code-eagle`, measured: held-out agreement from training, acceptance of its chain and tree
drafts on the `complete` suite, and what one draft forward costs against one forward of its target on this machine.

    python -m playground.training.train card --only eagle
"""

from __future__ import annotations

import json
import time

import torch

from playground import engine
from playground.bench.benchmark import read_records, run_ours
from playground.methods import eagle
from playground.models import loading as models
from playground.runtime.eagle_lm import EagleLM
from playground.runtime.lean import LeanLM

NAME = "tiny-code-eagle"


def acceptance(prompts: list[str], tree: str, max_new_tokens: int = 64) -> dict:
    """Tokens per target forward, and the share of drafted chain tokens accepted, over greedy runs of `prompts`."""
    tokens = forwards = accepted = drafted = 0
    for prompt in prompts:
        req = engine.Request(prompt=prompt, method="eagle", params={"tree": tree}, max_new_tokens=max_new_tokens)
        ids, _, target_forwards, steps = run_ours(req)
        tokens, forwards = tokens + len(ids), forwards + target_forwards
        accepted += sum(s.accepted for s in steps)
        drafted += sum(s.proposed for s in steps)
    return {"tokens_per_forward": tokens / forwards, "accepted_per_drafted": accepted / drafted,
            "prompts": len(prompts), "max_new_tokens": max_new_tokens}


@torch.inference_mode()
def draft_cost(repeats: int = 200) -> dict:
    """Median ms of one head forward and one target forward (lean runtime, one new token after 64), and c."""
    target = models.load(models.DEFAULT_MODEL)
    lm = LeanLM(target.model)
    head = EagleLM(models.load(NAME).model, lm)
    ids = list(range(16, 80))
    lm.forward(ids[:-1])
    head.forward(ids)
    times = {"head": [], "target": []}
    for _ in range(repeats):
        for name, runner in (("head", head), ("target", lm)):
            length = runner.length
            start = time.perf_counter()
            runner.forward([7])
            times[name].append(time.perf_counter() - start)
            runner.crop(length)
    ms = {k: 1000 * sorted(v)[len(v) // 2] for k, v in times.items()}
    return {"head_ms": ms["head"], "target_ms": ms["target"], "c": ms["head"] / ms["target"],
            "threads": torch.get_num_threads()}


def write_eagle_card() -> None:
    folder = models.shipped_models()[NAME]
    facts = json.loads((folder / "training.json").read_text())
    prompts = [r["prompt"] for r in read_records("complete")][:12]
    facts["card"] = {"chain": acceptance(prompts, "chain"), "dynamic": acceptance(prompts, "dynamic"),
                     "cost": draft_cost()}
    (folder / "training.json").write_text(json.dumps(facts, indent=2))
    (folder / "README.md").write_text(card_text(facts))
    print(f"wrote {folder / 'README.md'}")


def stage_text(f: dict) -> str:
    cfg = f["train_config"]
    return (f"{f['steps']} steps x {cfg['batch_size']} x {cfg['seq_len']} tokens = {f['tokens_seen']:,} tokens, "
            f"{f['train_seconds'] / 60:.0f} min on the 2-core CPU, AdamW lr {cfg['lr']}, cosine")


def training_text(f: dict) -> str:
    """One stage (the standard library's training split), or two: that stage, then fine-tuning with a share of
    the steps on the target's own greedy continuations (`train eagle --distilled`)."""
    if not f.get("earlier_stage"):
        return (f"{stage_text(f)}, on the standard library's training split; kept: step {f['kept_step']}, the best "
                "held-out agreement")
    first, share = f["earlier_stage"], f["train_config"]["distilled"]
    return (f"first {stage_text(first)}, on the standard library's training split (kept: step "
            f"{first['kept_step']}); then fine-tuned {stage_text(f)}, {share:.0%} of the steps on the target's own "
            f"greedy continuations of 8,192 training prompts (`train distill`; EAGLE trains on the target's "
            f"outputs too), the rest on the split; kept: step {f['kept_step']} of the fine-tuning, the best "
            "agreement on the target's continuations of held-out prompts")


def facts_table(f: dict) -> str:
    cfg, card, held = f["train_config"], f["card"], f["heldout"]
    cost, chain, tree = card["cost"], card["chain"], card["dynamic"]
    d = {p.name: p.default for p in eagle.METHOD.params}
    threads = f"{cost['threads']} thread" + ("s" if cost["threads"] > 1 else "")
    rows = [
        ("architecture", "fc (2 x 256 -> 256, bias) + one Llama decoder layer (4 heads, MLP 704); `models/eagle.py`"),
        ("parameters", f"{f['parameters']:,} (the target's embedding and LM head are shared, not counted)"),
        ("training", training_text(f)),
        ("loss", f"SmoothL1 on the feature + {cfg['ce_weight']} x cross-entropy against the target's whole "
                 f"next-token distribution; uniform noise ({cfg['noise']} of the features' std) on the input "
                 f"features; a second pass fed the head's own predicted features (weight {cfg['self_fed']}), as "
                 "EAGLE-3's training-time test does for one step"),
        ("held-out agreement", f"the head's top token equals the target's on **{held['agree_real']:.1%}** of "
                               f"held-out positions reading the target's features, **{held['agree_own']:.1%}** "
                               "reading its own (24 windows of 256 tokens)" + (
                                   f"; **{held['agree_gen']:.1%}** on the target's own greedy continuations of "
                                   "256 held-out prompts, what drafting meets" if "agree_gen" in held else "")),
        ("acceptance", f"greedy, 12 prompts of the `complete` suite, 64 tokens, the method's defaults: chain (gamma "
                       f"{d['gamma']}) **{chain['tokens_per_forward']:.2f}** tokens per target forward "
                       f"({chain['accepted_per_drafted']:.0%} of drafted tokens accepted); dynamic tree (EAGLE-2, "
                       f"{d['nodes']} nodes, depth {d['depth']}, top {d['topk']}, min_path {d['min_path']}) "
                       f"**{tree['tokens_per_forward']:.2f}**"),
        ("cost per draft forward", f"{cost['head_ms']:.2f} ms against {cost['target_ms']:.2f} ms for a target "
                                   f"forward (lean runtime, {threads}): "
                                   f"c = **{cost['c']:.2f}**")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def card_text(f: dict) -> str:
    cfg = f["train_config"]
    gen = "agree_gen" in f["log"][0]  # fine-tuned on the target's continuations: agreement on held-out ones too
    rows = "\n".join(f"| {r['step']} | {r['agree_real']:.3f} | {r['agree_own']:.3f} | "
                     + (f"{r['agree_gen']:.3f} | " if gen else "") + f"{r['loss']:.3f} |" for r in f["log"])
    head = ("| step | agreement (target's features) | agreement (own features) | "
            + ("agreement (the target's continuations) | " if gen else "") + "loss |\n|---|---|---|"
            + ("---|" if gen else "") + "---|")
    first = (f.get("earlier_stage") or {}).get("train_config", {})
    reproduce = (f"python -m playground.training.train eagle --steps {cfg['steps']} --minutes 50 --threads 1"
                 if not f.get("earlier_stage") else
                 f"python -m playground.training.train eagle --steps {first['steps']} --minutes {first['minutes']:g} "
                 "--threads 1 && python -m playground.training.train distill --threads 2 && python -m "
                 f"playground.training.train eagle --distilled {cfg['distilled']} --minutes {cfg['minutes']:g} "
                 "--threads 1")
    return f"""---
library_name: transformers
tags: [decoding-playground, eagle, speculative-decoding]
---
# {NAME}

An EAGLE draft head (Li et al. 2024, arXiv 2401.15077) for `{cfg['target']}`: one decoder layer that predicts the
target's next feature (its final, normed hidden state) from its current feature and the next token's embedding,
f^_t = Block(fc([f_(t-1); E x_t])), and drafts through the target's own LM head. It ships only its fc and its
block; the embedding and the LM head are the target's.

{facts_table(f)}

Held-out during {"fine-tuning" if f.get("earlier_stage") else "training"} (agreement with the target's top token; \
loss is both passes together):

{head}
{rows}

Reproduce: `{reproduce} && python -m playground.training.train card --only eagle` (each stage resumable:
checkpoints/eagle/ and checkpoints/eagle-distilled/).
"""
