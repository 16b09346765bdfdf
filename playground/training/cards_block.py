"""The model card of tiny-code-block (training/block.py): what it is, how it was made, and what its decoding buys
over one token per forward and over tiny-code's own autoregressive decoding, measured on this machine."""

from __future__ import annotations

import json
import time

from playground import engine
from playground.analysis import quality
from playground.models import loading as models
from playground.training.cards import PROMPTS_FILE, loss_table
from playground.training.configs import BLOCK

RUNS = {  # row label -> (model, method, params)
    "one token per forward": (BLOCK.name, "diffusion", {"strategy": "fixed_steps", "cache": "prefix"}),
    "threshold 0.9": (BLOCK.name, "diffusion", {"strategy": "threshold", "threshold": 0.9, "cache": "prefix"}),
    "threshold 0.7": (BLOCK.name, "diffusion", {"strategy": "threshold", "threshold": 0.7, "cache": "prefix"}),
    "freedave": (BLOCK.name, "diffusion", {"strategy": "freedave", "cache": "prefix"}),
    "tiny-code autoregressive": ("tiny-code", "autoregressive", {}),
}


def measure(prompts: list[str], max_new_tokens: int = 128) -> dict:
    """Per run: mean generative perplexity under tiny-code, tokens per forward and seconds, over `prompts`."""
    out = {}
    for label, (model, method, params) in RUNS.items():
        ppl, tokens, forwards, seconds = [], 0, 0, 0.0
        for prompt in prompts:
            req = engine.Request(prompt=prompt, model=model, method=method, max_new_tokens=max_new_tokens,
                                 params=params)
            start = time.perf_counter()
            started, *_, finished = engine.generate(req)
            seconds += time.perf_counter() - start
            ppl.append(quality.generative_perplexity(started.prompt_ids, finished.token_ids))
            tokens += len(finished.token_ids)
            forwards += finished.stats.target_forwards
        kept = [p for p in ppl if p is not None]
        out[label] = {"generative_perplexity": sum(kept) / len(kept) if kept else None,
                      "tokens_per_forward": tokens / max(1, forwards), "seconds": seconds, "tokens": tokens}
    return {"runs": out, "prompts": len(prompts), "max_new_tokens": max_new_tokens}


def write_block_card(prompts: int = 10) -> None:
    folder = models.MODELS_DIR / BLOCK.name
    f = json.loads((folder / "training.json").read_text())
    texts = [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text().splitlines()][:prompts]
    f["decoding"] = measure(texts)
    (folder / "training.json").write_text(json.dumps(f, indent=2))
    (folder / "README.md").write_text(block_card_text(BLOCK.name, f))
    print(f"wrote the card of {BLOCK.name}")


def block_card_text(name: str, f: dict) -> str:
    cfg, m, d = f["train_config"], f["train_config"]["model"], f["decoding"]
    rows = [f"| {label} | {r['generative_perplexity']:.2f} | {r['tokens_per_forward']:.2f} | "
            f"{r['tokens'] / r['seconds']:.1f} |" for label, r in d["runs"].items()]
    lines = [
        "---", "library_name: transformers", "pipeline_tag: fill-mask",
        "tags: [decoding-playground, code, diffusion, block-diffusion]", "---", f"# {name}", "",
        "Block diffusion made from the autoregressive `tiny-code` (Fast-dLLM v2 style), for the `diffusion` method: "
        "blocks of tokens are generated left to right, each block filled by unmasking, several tokens per forward.",
        "", "| | |", "|---|---|",
        f"| architecture | EuroBertForMaskedLM (Llama-style blocks, RoPE) holding every weight of `{cfg['init']}`: "
        f"{m['num_hidden_layers']} layers, hidden {m['hidden_size']}, {f['parameters']:,} parameters; "
        f"`block_size` {cfg['block_size']} in config.json: attention causal across blocks, both ways inside one |",
        "| token shift | kept from the autoregressive model: the output at position i predicts position i + 1; a "
        "block's first token is predicted by the clean token just before it |",
        "| cache | exact: the keys and values of finished blocks are an autoregressive model's, so `prefix` and "
        "`dual` equal `none` token for token |",
        f"| objective | each {cfg['seq_len']}-token window as [noisy copy ; clean copy]: the clean copy attends "
        "causally (next-token loss), the noisy copy's blocks attend to themselves and to the clean copy before them "
        "(masked-diffusion loss, 1/t weighted); complementary masks (each window with a mask and its complement); "
        f"the first {cfg['min_prefix']}-{cfg['max_prefix']} tokens are a prompt, never masked |",
        f"| training | {f['steps']} steps x {cfg['batch_size']} windows (x2 masks) on {f.get('device', 'a CPU')}, "
        f"{f['train_seconds'] / 60:.1f} min, AdamW lr {cfg['lr']}, cosine; held-out block-diffusion loss "
        f"{f['heldout_loss']:.3f} nats/token |",
        "", f"Decoding, first {d['prompts']} prompts of `complete`, {d['max_new_tokens']} new tokens, prefix cache; "
        "generative perplexity under `tiny-code`:", "",
        "| run | generative perplexity | tokens per forward | tokens/s |", "|---|---|---|---|", *rows,
    ]
    lines += loss_table("Held-out block-diffusion loss during training:", f["log"])
    lines += ["", "Reproduce: `python -m playground.training.train block --minutes M --threads 1` (resumable), "
              "then `python -m playground.training.train card --only block`.", ""]
    return "\n".join(lines)
