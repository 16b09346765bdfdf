"""Model cards for the shipped models: measured, not written by hand.

`python -m playground.training.train card` evaluates the shipped target and draft (held-out loss, the draft's acceptance
rate against the target on held-out prompts, the per-token cost of each) and the diffusion model (held-out diffusion
loss, the generative perplexity of its outputs, the cost of a forward), and writes README.md in each model folder.
"""

from __future__ import annotations

import json
import time

import torch

from playground import engine
from playground.analysis import quality
from playground.bench.benchmark import run_ours
from playground.data import stdlib as data
from playground.data import suites
from playground.models import loading as models
from playground.runtime.lm import CachedLM
from playground.training.configs import DEEP, DEEP_DRAFT, DIFFUSION, DRAFT, HELDOUT_DISTILLED, TARGET
from playground.training.diffusion import diffusion_heldout_loss
from playground.training.distill import teacher_continuations
from playground.training.lm import eval_windows, heldout_loss
from playground.training.loop import distilled_heldout_loss
from playground.training.tokenizer import load_tokenizer

PROMPTS_FILE = suites.suite_path("complete")


def write_prompts(n: int = suites.PER_SUITE) -> None:
    """The prompt suites (complete, repeat, edit, docstring), cut from held-out stdlib files only."""
    suites.write_suites(load_tokenizer(), n)


def acceptance(prompts: list[str], model: str, draft: str, gamma: int = 4, max_new_tokens: int = 64) -> dict:
    accepted = drafted = 0
    for prompt in prompts:
        req = engine.Request(prompt=prompt, model=model, draft=draft, method="speculative",
                             max_new_tokens=max_new_tokens, params={"gamma": gamma})
        steps = run_ours(req)[-1]
        accepted += sum(s.accepted for s in steps)
        drafted += sum(s.proposed for s in steps)
    return {"acceptance_rate": accepted / drafted, "gamma": gamma, "prompts": len(prompts),
            "max_new_tokens": max_new_tokens}


def flops_per_token(model) -> int:
    """Multiply-adds of one token through the weight matrices (attention over the context left out)."""
    return sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed_tokens" not in n) + (
        model.get_output_embeddings().weight.numel() if model.config.tie_word_embeddings else 0)


@torch.inference_mode()
def ms_per_token(model, steps: int = 64) -> float:
    lm = CachedLM(model)
    lm.forward(list(range(16, 80)))
    start = time.perf_counter()
    for i in range(steps):
        lm.forward([100 + i])
    return (time.perf_counter() - start) / steps * 1000


def write_cards() -> None:
    """The cards of each shipped target and its draft (tiny-code's pair, and the deep pair once it is trained)."""
    tokenizer = load_tokenizer()
    windows = eval_windows(data.token_array(tokenizer, "heldout"), TARGET)  # the same windows for every model
    prompts = [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text().splitlines()]
    for target_cfg, draft_cfg in ((TARGET, DRAFT), (DEEP, DEEP_DRAFT)):
        if not all((models.MODELS_DIR / c.name / "training.json").is_file() for c in (target_cfg, draft_cfg)):
            print(f"skipped the cards of {target_cfg.name} and {draft_cfg.name}: not both trained")
            continue
        facts = {}
        for cfg in (target_cfg, draft_cfg):
            model = models.load(cfg.name).model
            f = json.loads((models.MODELS_DIR / cfg.name / "training.json").read_text())
            f["heldout_loss"] = heldout_loss(model, windows)
            f["flops_per_token"] = flops_per_token(model)
            f["ms_per_token"] = ms_per_token(model)
            facts[cfg.name] = f
        facts[draft_cfg.name]["acceptance"] = acceptance(prompts[:10], target_cfg.name, draft_cfg.name)
        for name, f in facts.items():
            (models.MODELS_DIR / name / "training.json").write_text(json.dumps(f, indent=2))
            (models.MODELS_DIR / name / "README.md").write_text(card_text(name, f, target_cfg.name,
                                                                          facts[target_cfg.name]))
            print(f"wrote the card of {name}")


def intro(name: str, cfg: dict, target_name: str) -> str:
    """The card's first sentence: what the model is for."""
    layers = cfg["model"]["num_hidden_layers"]
    if name == target_name and not cfg.get("teacher"):
        return "The target model of Decoding Playground: a small Llama-style causal LM for Python code."
    if name == target_name:
        return (f"A deep, narrow target: {layers} layers of width {cfg['model']['hidden_size']}, distilled from "
                f"`{cfg['teacher']}` (forward KL to its next-token distributions on the training text). On a CPU at "
                "batch size 1 a forward costs mostly fixed work per layer, so this shape scores a whole draft tree "
                "for little more than one token and its narrow draft costs a tenth of it: the pair measures what "
                "that shape changes for speculative decoding and draft trees on such hardware (docs/BENCHMARKS.md).")
    cut = (f", cut from the first {layers} layers of `{cfg['init']}` (which learned an early exit after them)"
           if cfg.get("init") else "")
    return (f"A {layers}-layer draft model for speculative decoding{cut}, distilled from `{cfg['teacher']}` (forward "
            "KL to the target's next-token distributions on the training text, as FastDraft-style drafts are trained "
            "to agree with their target).")


REPRODUCE = {
    "tiny-code": "python -m playground.training.train tokenizer && python -m playground.training.train target "
                 "--minutes 4.4 && python -m playground.training.train draft --minutes 1.8",
    "tiny-code-deep": "python -m playground.training.train deep && python -m playground.training.train deep-draft",
}


def card_text(name: str, f: dict, target_name: str, target: dict) -> str:
    first = f.get("earlier_stage") or f  # the training that a distilled stage continues
    m, cfg = first["train_config"]["model"], first["train_config"]
    is_draft = name != target_name
    lines = [
        "---", "library_name: transformers", "pipeline_tag: text-generation", "tags: [decoding-playground, code]",
        "---", f"# {name}", "", intro(name, cfg, target_name), "",
        "| | |", "|---|---|",
        f"| architecture | LlamaForCausalLM, {m['num_hidden_layers']} layer{'s' * (m['num_hidden_layers'] > 1)}, "
        f"hidden {m['hidden_size']}, {m['num_attention_heads']} heads, MLP {m['intermediate_size']}, tied embeddings |",
        f"| parameters | {f['parameters']:,} |",
        "| vocabulary | 4096-token byte-level BPE (shared by every shipped model; `<|endoftext|>`, `<|pad|>`, "
        "`<|mask|>` reserved) |",
        f"| context trained | {cfg['seq_len']} tokens (position table {m['max_position_embeddings']}) |",
        "| data | the Python standard library source (`.py` files, `encodings/` and `site-packages/` left out) of "
        f"Python {f.get('data', {}).get('python', '?')}, split by a hash of each file's path: 90% train "
        f"({f.get('train_tokens') or 0:,} tokens), 10% held out"
        + (f"; {f['data']['note']}" if f.get("data", {}).get("note") else "")
        + (f"; {cfg['repeat_fraction']:.0%} of the training windows end by repeating their own last 32-256 tokens "
           "word for word, so that the model learns to copy from its context (what prompt lookup and CopySpec "
           "drafts bet on)" if cfg.get("repeat_fraction") else "") + " |",
        f"| training | {first['steps']} steps x {cfg['batch_size']} x {cfg['seq_len']} tokens = "
        f"{first['tokens_seen']:,} tokens, {first['train_seconds'] / 60:.1f} min on "
        f"{first.get('device', '2 CPU cores')} (bf16 autocast), AdamW lr {cfg['lr']}, cosine, seed {cfg['seed']}"
        + (f"; weights of step {first['kept_step']}, the lowest held-out loss of the evaluations every "
           f"{cfg['eval_every']} steps" if first.get("kept_step", first["steps"]) != first["steps"] else "")
        + "".join(f"; {note}" for note in first.get("notes", [])) + " |",
        *([distillation_row(f)] if f.get("distilled") else []),
        *([f"| early exit | the KL of the LM head read after layer {cfg['exit_layer']} is trained too (weight "
           f"{cfg['exit_weight']}), so the first {cfg['exit_layer']} layers work as a model of their own: the "
           "draft starts as them |"] if cfg.get("exit_weight") else []),
        # write_cards measures every causal LM on TARGET's held-out windows
        f"| held-out loss | **{f['heldout_loss']:.3f} nats/token** (cross-entropy on {TARGET.eval_windows} held-out "
        f"windows of {TARGET.seq_len} tokens, the same for every shipped causal LM) |",
        f"| cost per token | {f['flops_per_token'] / 1e6:.2f} M multiply-adds "
        + (f"({f['flops_per_token'] / target['flops_per_token']:.1%} of the target's)" if is_draft else "")
        + f"; {f['ms_per_token']:.2f} ms per token measured on this CPU "
        + (f"({f['ms_per_token'] / target['ms_per_token']:.0%} of the target's)" if is_draft else "") + " |",
    ]
    if cfg.get("layer_dropout") or cfg.get("early_exit_weight"):
        lines.append(f"| layer skipping | trained as LayerSkip (arXiv 2404.16710) does: each attention and MLP "
                     f"sub-layer dropped per sample with a rate rising linearly to {cfg['layer_dropout']} at the "
                     f"last layer, plus the LM head's loss on {cfg['early_exit_layers']} random intermediate layers "
                     f"per step (weight {cfg['early_exit_weight']}), so drafts that skip layers (`self_speculative`, "
                     "`early_exit`) agree with the full model more often |")
    lines += skip_set_row(name, m["num_hidden_layers"])
    if is_draft:
        a = f["acceptance"]
        lines.append(f"| acceptance rate | **{a['acceptance_rate']:.1%}** of drafted tokens accepted by "
                     f"`{target_name}`, greedy speculative decoding, gamma {a['gamma']}, {a['prompts']} held-out "
                     f"prompts of `assets/prompts/complete.jsonl`, {a['max_new_tokens']} new tokens each |")
    if not is_draft and f["heldout_loss"] > 2.5:
        lines += ["", f"**Limits.** The project aims at 2.5 nats/token held out; this model is at "
                  f"{f['heldout_loss']:.2f}. The standard library is a small corpus "
                  f"({f.get('train_tokens', 0) / 1e6:.1f}M training tokens): held-out loss stops falling after a "
                  "few epochs, and a bigger model would overfit sooner and decode slower on a CPU."]
    train_col = f"train loss (KL to `{cfg['teacher']}`)" if cfg.get("teacher") else "train loss"
    lines += loss_table("Held-out loss during training:", first["log"], train_col)
    if f.get("distilled"):
        lines += loss_table("Cross-entropy on `tiny-code`'s greedy continuations of 256 held-out prompts during "
                            "distillation:", f["log"], train_col)
    lines += ["", f"Reproduce: `{REPRODUCE[target_name]} "
              + ("&& python -m playground.training.train distill "
                 "&& python -m playground.training.train draft-distilled " if f.get("distilled") else "")
              + "&& python -m playground.training.train card` (on a GPU when "
              "there is one; `--device cpu` works, hours slower). The split and the batches depend only on the seed "
              "and the interpreter's standard library; `--minutes` cuts the step count to what fits, measured over "
              "the first steps, and the steps run are recorded above.", ""]
    return "\n".join(lines)


def skip_set_row(name: str, layers: int) -> list[str]:
    """The card's line for the self-speculative skip set skipsearch stored beside the model, if it did."""
    skip_file = models.MODELS_DIR / name / "skip_set.json"
    if not skip_file.is_file():
        return []
    k = json.loads(skip_file.read_text())
    return [f"| self-speculative skip set | {len(k['skip'])} of {2 * layers} sub-layers "
            f"skipped while drafting ({', '.join(k['skip'])}; `{k['chosen']}`): the fastest in the final "
            f"round of `{k['command']}` ({len(k['trials'])} sets tried), {k['speedup_on_calibration']:.2f}x "
            "autoregressive on its calibration prompts; stored in `skip_set.json` |"]


# ---------------------------------------------------------------- the diffusion model


@torch.inference_mode()
def ms_per_forward(model, tokens: int = 224, repeats: int = 10) -> float:
    """One full forward over a canvas of `tokens` positions (a 96-token prompt and 128 to fill), median."""
    ids = torch.randint(3, model.config.vocab_size, (1, tokens))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model(input_ids=ids)
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2]


def sample_quality(prompts: list[str], max_new_tokens: int = 64) -> dict:
    """Generative perplexity (under tiny-code) of one-token-per-forward diffusion outputs, next to tiny-code's own
    greedy outputs on the same prompts: how far the diffusion model is from the autoregressive one."""
    out = {}
    for model, method in (("tiny-code-diffusion", "diffusion"), ("tiny-code", "autoregressive")):
        ppl = []
        for prompt in prompts:  # token_ids stop at the end-of-text, a special token the judge leaves out
            req = engine.Request(prompt=prompt, model=model, method=method, max_new_tokens=max_new_tokens,
                                 params={"strategy": "fixed_steps"} if method == "diffusion" else {})
            started, *_, finished = engine.generate(req)
            ppl.append(quality.generative_perplexity(started.prompt_ids, finished.token_ids))
        ppl = [p for p in ppl if p is not None]
        out[model] = sum(ppl) / len(ppl) if ppl else None
    return {"generative_perplexity": out, "prompts": len(prompts), "max_new_tokens": max_new_tokens}


def write_diffusion_card() -> None:
    name = DIFFUSION.name
    folder = models.MODELS_DIR / name
    tokenizer = load_tokenizer()
    model = models.load(name).model
    f = json.loads((folder / "training.json").read_text())
    f["heldout_loss"] = diffusion_heldout_loss(model, eval_windows(data.token_array(tokenizer, "heldout"), DIFFUSION),
                                               tokenizer)
    if f.get("distilled"):
        held = teacher_continuations(HELDOUT_DISTILLED, tokenizer, torch.device("cpu"))
        f["heldout_loss_distilled"] = distilled_heldout_loss(model, held, tokenizer, diffusion=True)
    f["ms_per_forward"] = ms_per_forward(model)
    f["architecture"] = type(model).__name__
    prompts = [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text().splitlines()]
    f["sample_quality"] = sample_quality(prompts[:10])
    (folder / "training.json").write_text(json.dumps(f, indent=2))
    (folder / "README.md").write_text(diffusion_card_text(name, f))
    print(f"wrote the card of {name}")


def loss_table(title: str, log: list[dict], train_col: str = "train loss") -> list[str]:
    return (["", title, "", f"| step | {train_col} | held-out loss |", "|---|---|---|"]
            + [f"| {e['step']} | {e['train_loss']:.3f} | {e['heldout_loss']:.3f} |" for e in log])


def distillation_row(f: dict) -> str:
    """The card's line for a second, distilled training stage (training/distill.py)."""
    cfg, d = f["train_config"], f["distilled"]
    return (f"| distillation | a second stage on top of the first: sequence-level knowledge distillation (Kim & Rush, "
            f"2016), {f['steps']} steps x {cfg['batch_size']} rows of `{d['teacher']}`'s greedy {d['new_tokens']}-token"
            f" continuations of {d['rows']:,} prompts of {d['min_prefix']}-{d['max_prefix']} tokens cut from the "
            f"training split, {cfg['natural_fraction']:.0%} of the steps on stdlib windows as in the first stage; "
            f"{f['train_seconds'] / 60:.0f} min on {f.get('device', '2 CPU cores')}, AdamW lr {cfg['lr']}, cosine"
            + (f"; weights of step {f['kept_step']}, the lowest loss on the teacher's continuations of 256 held-out "
               "prompts" if f.get("kept_step", f["steps"]) != f["steps"] else "")
            + "; the teacher's continuation is one fixed text per prompt, far less uncertain than code people wrote: "
              "a diffusion model is then sure of more masked tokens at once, a draft agrees with the target more "
              "often |")


def diffusion_card_text(name: str, f: dict) -> str:
    first = f.get("earlier_stage") or f  # the masked-diffusion training that a distilled stage continues
    m, cfg, q = first["train_config"]["model"], first["train_config"], f["sample_quality"]
    on_cpu = "CPU" in first.get("device", "CPU")
    ppl = q["generative_perplexity"]
    lines = [
        "---", "library_name: transformers", "pipeline_tag: fill-mask", "tags: [decoding-playground, code, diffusion]",
        "---", f"# {name}", "",
        "The masked-diffusion model of Decoding Playground: a small bidirectional transformer that completes Python "
        "code by unmasking a canvas of mask tokens (LLaDA / MDLM style), for the `diffusion` method.", "",
        "| | |", "|---|---|",
        f"| architecture | {f.get('architecture', 'EuroBertForMaskedLM')} (Llama-style blocks, bidirectional "
        f"attention, RoPE; loads with `AutoModelForMaskedLM`), {m['num_hidden_layers']} layers, hidden "
        f"{m['hidden_size']}, {m['num_attention_heads']} heads, MLP {m['intermediate_size']}, tied embeddings, "
        f"up to {m['max_position_embeddings']} positions (prompt + canvas) |",
        f"| initialisation | adapted from `{cfg['init']}` as Dream 7B adapts an autoregressive model"
        f": embeddings, the first {m['num_hidden_layers']} of its 12 layers (trained with LayerSkip's "
        "early-exit loss, so they work as a model of their own) and final norm; logits shifted: the output at "
        "position i predicts position i + 1 (`shift_logits` in config.json; the `diffusion` method reads it) |"
        if cfg.get("init") else "| initialisation | random |",
        f"| parameters | {f['parameters']:,} |",
        "| vocabulary | the 4096-token byte-level BPE every shipped model shares; `<|mask|>` is the mask, "
        "`<|endoftext|>` ends an output and `<|pad|>` fills the canvas after it |",
        f"| objective | masked diffusion: per window t ~ U(0, 1), each continuation token masked with probability t, "
        f"cross-entropy on masked tokens weighted by 1/t, averaged over continuation tokens; the first "
        f"{cfg['min_prefix']}-{cfg['max_prefix']} tokens of each {cfg['seq_len']}-token window are the prompt and "
        f"never masked; the continuation stops at the first end-of-text, or in {cfg['end_fraction']:.0%} of windows "
        "at a random line break, followed by padding, so the model learns where to end"
        + "".join(f"; {note}" for note in first.get("notes", [])) + " |",
        data_row(first),
        f"| training | {first['steps']} steps x {cfg['batch_size']} x {cfg['seq_len']} tokens = "
        f"{first['tokens_seen']:,} tokens, {first['train_seconds'] / 60:.1f} min on "
        f"{first.get('device', '2 CPU cores')}, {'fp32' if on_cpu else 'bf16 autocast'}"
        f", AdamW lr {cfg['lr']}, cosine, seed {cfg['seed']}"
        + ("; trained from scratch instead, BERT and pre-LN BERT stayed at the unigram loss for their first 200-400 "
           "steps on this budget" if on_cpu else "")
        + (f"; weights of step {first['kept_step']}, the lowest held-out loss of the evaluations every "
           f"{cfg['eval_every']} steps" if first.get("kept_step", first["steps"]) != first["steps"] else "") + " |",
        *([distillation_row(f)] if f.get("distilled") else []),
        f"| held-out loss | **{f['heldout_loss']:.3f} nats/token**: the diffusion loss (an upper bound on the "
        f"continuation's negative log-likelihood) on {cfg['eval_windows']} held-out windows of {cfg['seq_len']} "
        "tokens with a 64-token prompt, fixed noise"
        + (f"; **{f['heldout_loss_distilled']:.3f}** on `tiny-code`'s continuations of 256 held-out prompts"
           if f.get("heldout_loss_distilled") is not None else "") + " |",
        f"| output quality | generative perplexity under `tiny-code` of its one-token-per-forward outputs "
        f"(`fixed_steps`, {q['max_new_tokens']} tokens, first {q['prompts']} prompts of `complete`): "
        f"**{ppl['tiny-code-diffusion']:.1f}**; `tiny-code`'s own greedy outputs on the same prompts: "
        f"{ppl['tiny-code']:.1f} |",
        f"| cost per forward | {f['ms_per_forward']:.1f} ms for one forward over 224 positions (96-token prompt + "
        "128 to fill) on this CPU |",
        *replaced_row(f),
        "", f"**Limits.** {first['train_seconds'] / 60:.0f} minutes of training on {first.get('device', 'a CPU')}, "
        "on top of half of `tiny-code`. Its outputs look like code, locally; they are not correct programs"
        + (", and after distillation they imitate `tiny-code`'s greedy output, repetitions included"
           if f.get("distilled") else "")
        + ". It is here to show how diffusion decoding works and what the fast strategies cost.",
    ]
    lines += loss_table("Held-out loss during training:", first["log"])
    if f.get("distilled"):
        lines += loss_table("Loss on `tiny-code`'s continuations of the held-out prompts during distillation:",
                            f["log"])
    train = (f"python -m playground.training.train corpus && python -m playground.training.train diffusion-corpus "
             f"--device cuda --minutes {cfg.get('minutes') or 5.5}" if cfg.get("corpus") == "corpus" else
             "python -m playground.training.train diffusion --minutes 45")
    lines += ["", f"Reproduce: `{train}"
              + (" && python -m playground.training.train distill "
                 "&& python -m playground.training.train diffusion-distilled" if f.get("distilled") else "")
              + " && python -m playground.training.train card --only diffusion` (`--minutes` cuts the step count to "
              "what fits, measured over the first steps; the steps run are recorded above"
              + ("; `scripts/device_run.sh train` is how it ran on a lent GPU, with the corpus packed here"
                 if cfg.get("corpus") == "corpus" else "") + ").", ""]
    return "\n".join(lines)


def data_row(f: dict) -> str:
    """The card's data line: the standard library alone, or the corpus of playground/data/corpus.py with it."""
    stdlib = (f"the Python standard library source (`.py` files, `encodings/` and `site-packages/` left out) of "
              f"Python {f.get('data', {}).get('python', '?')}")
    corpus = f.get("corpus")
    if not corpus:
        return (f"| data | {stdlib}, split by a hash of each file's path: 90% train "
                f"({f.get('train_tokens') or 0:,} tokens), 10% held out; the same split as `tiny-code` |")
    packages = corpus["packages"]
    licences = sorted({p["licence"] for p in packages})
    return (f"| data | `python -m playground.training.train corpus`: {stdlib} "
            f"({corpus['stdlib']['train']['tokens']:,} train tokens, the same split as `tiny-code`) and the `.py` "
            f"files of {len(packages)} pinned PyPI packages "
            f"({', '.join(p['name'] for p in packages[:6])}, ...; licences {', '.join(licences)}, each checked "
            f"against the wheel's metadata and listed in training.json), split by a hash of each file's path: "
            f"{corpus['train_tokens']:,} train tokens in all, held-out files never trained on; evaluated on the "
            "standard library's held-out files, as every shipped model |")


def replaced_row(f: dict) -> list[str]:
    """What this model replaced, figure for figure (training.json's `replaces`)."""
    old = f.get("replaces")
    if not old:
        return []
    return ["", f"**Replaces** the model shipped before ({old['what']}): held-out loss {old['heldout_loss']:.3f} "
            f"nats/token, generative perplexity {old['generative_perplexity']:.1f} on the same prompts. "
            f"{old['figures']}"]
