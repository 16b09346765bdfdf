"""Model cards of the number translators (tiny-numbers-dat, -nat, -ar, -dat-kd): measured on the held-out `numbers`
suite.

`python -m playground.training.train_dag card` runs `bench` once over the suite (every decoding of every model, side by
side in one process) and writes README.md in each model folder with its rows: exact-match accuracy under any valid
rendering, corpus BLEU (sacrebleu, all valid renderings as references), the share of mixed renderings, latency.
"""

from __future__ import annotations

import json

from playground.bench import benchmark as bench
from playground.models import loading as models

AR, DAT, NAT, KD = "tiny-numbers-ar", "tiny-numbers-dat", "tiny-numbers-nat", "tiny-numbers-dat-kd"
ROWS = {  # bench spec -> what the card calls it
    "autoregressive": "autoregressive greedy",
    "gad": f"gad (draft {KD})",
    f"dag@{DAT}:strategy=greedy": "greedy",
    f"dag@{DAT}:strategy=lookahead": "lookahead",
    f"dag@{DAT}:strategy=viterbi": "joint Viterbi",
    f"dag@{DAT}:strategy=beam": "beam 4",
    f"dag@{DAT}:strategy=beam:lm_weight=0.3": "beam 4 + bigram LM (0.3)",
    f"dag@{NAT}": "one vertex per target token",
    f"dag@{KD}:strategy=lookahead": "lookahead (distilled from the AR model)",
}
VOCABULARY = ("88 word-level tokens (`tokenizers` WordLevel; hyphens are tokens of their own), shared by source and "
              "target and by all four number models")
TASK = ("French number phrases to English ones, 0 to 999 999 (`playground/data/numbers.py`); the English side is "
        "multimodal: each training example takes a random article (\"one thousand\" or \"a thousand\") and for each "
        "group of three digits a style (\"two hundred forty-three\" or \"two hundred and forty-three\")")
FRONT = "---\nlibrary_name: transformers\npipeline_tag: translation\ntags: [decoding-playground, numbers, {tag}]\n---\n"


def evaluate(limit: int | None = None) -> dict:
    import torch
    torch.set_num_threads(1)  # models this small run faster on one thread, every row alike (docs/BENCHMARKS.md)
    records = bench.read_records("numbers")[:limit]
    return bench.benchmark(AR, KD, list(ROWS), [r["prompt"] for r in records], 32, progress=True,
                           answers=[None] * len(records), records=records)


def facts(name: str) -> dict:
    return json.loads((models.MODELS_DIR / name / "training.json").read_text())


def table(result: dict, specs: list[str]) -> str:
    lines = ["| decoding | accuracy | BLEU | mixed renderings | ms per sentence | vs autoregressive |",
             "|---|---|---|---|---|---|"]
    for spec in specs:
        r = result["methods"][spec]
        lines.append(f"| {ROWS[spec]} | {r['accuracy']:.1%} | {r['bleu']:.1f} | {r['mixed']:.1%} | "
                     f"{r['latency_ms']:.1f} | {r['latency_speedup']:.2f}x faster |")
    return "\n".join(lines)


def card(name: str, tag: str, what: str, architecture: str, result: dict, specs: list[str]) -> str:
    f = facts(name)
    cfg = f["config"]
    targets = (f"; the targets are {cfg['teacher']}'s greedy translations of the sources (sequence-level knowledge "
               "distillation)" if cfg.get("teacher") else "")
    rows = "\n".join([
        f"| architecture | {architecture} |",
        f"| parameters | {f['parameters']:,} |",
        f"| vocabulary | {VOCABULARY} |",
        f"| task | {TASK} |",
        f"| data | generated on the fly, {cfg['batch_size']} examples per step from (seed, step), digit count uniform "
        "from 1 to 6; numbers from 100 up whose hash falls in one bucket of 20 are held out and never trained on"
        f"{targets} |",
        f"| training | {f['steps']} steps, AdamW lr {cfg['lr']}, cosine, {f['train_seconds'] / 60:.0f} min on "
        f"{f['device']} (one thread, beside the other trainings), fp32; final training loss {f['final_loss']:.3f} |",
    ])
    return FRONT.format(tag=tag) + f"""# {name}

{what}

| | |
|---|---|
{rows}

Held-out evaluation: the {result['prompts']} prompts of `assets/prompts/numbers.jsonl` (distinct held-out numbers),
greedy, batch size 1, one process, {result['threads']} thread(s). A prediction is correct when it equals any valid
rendering; "mixed" counts wrong ones that take each token from one valid rendering of their length or another (the
multimodality failure). Latency is end to end through the engine, graph recording included.

{table(result, specs)}

Reproduce: `python -m playground.training.train_dag card` (or `python -m playground bench --model {AR} --draft {KD}
--prompts numbers --methods {','.join(specs)}`).
"""


def write_cards(limit: int | None = None) -> None:
    result = evaluate(limit)
    dag_specs = [s for s in ROWS if s.startswith(f"dag@{DAT}")]
    cards = {
        DAT: card(DAT, "dag", "The DA-Transformer of Decoding Playground: a non-autoregressive translator that "
                  "builds a directed acyclic graph of candidate tokens in one parallel pass, for the `dag` method "
                  f"(`gad` drafts with its distilled twin, {KD}).",
                  "DA-Transformer (Huang et al. 2022; `playground/models/dat.py`, registered with "
                  "`AutoConfig`/`AutoModel` "
                  "as `da-transformer`): 3 encoder and 3 decoder layers (pre-LN), width 128, 4 heads, FFN 512; "
                  f"graph size {facts(DAT)['config']['upsample']} x source length; vertices start from a uniform copy "
                  "of the encoder states plus vertex embeddings; transitions from query-key scores between vertices; "
                  "trained with "
                  "the dynamic-programming loss over all paths and glancing (ratio 0.5 -> 0.1)",
                  result, ["autoregressive"] + dag_specs),
        NAT: card(NAT, "nat", "The DAG-free baseline: the same network as tiny-numbers-dat without a graph, a plain "
                  "non-autoregressive translator (Gu et al. 2018) that emits one token per vertex.",
                  "the DA-Transformer network with `graph: false`: as many vertices as the predicted target length "
                  "(a length head on the mean encoder state), cross-entropy at each vertex, no glancing",
                  result, ["autoregressive", f"dag@{NAT}", f"dag@{DAT}:strategy=lookahead"]),
        KD: card(KD, "dag", "gad's drafter: the DA-Transformer network trained on tiny-numbers-ar's own greedy "
                 "translations instead of the multimodal references (sequence-level knowledge distillation, as GAD "
                 "trains its drafter), so its drafts follow the renderings the verifier writes.",
                 "as tiny-numbers-dat: DA-Transformer, 3+3 layers, width 128, graph size "
                 f"{facts(KD)['config']['upsample']} x source length, DP loss "
                 "over all paths with glancing; targets from the teacher",
                 result, ["autoregressive", "gad", f"dag@{KD}:strategy=lookahead", f"dag@{DAT}:strategy=lookahead"]),
        AR: card(AR, "autoregressive", "The autoregressive baseline of the DAG demo, and the verifier of `gad`.",
                 "BART (`BartForConditionalGeneration`): 3 encoder and 3 decoder layers, width 128, 4 heads, FFN "
                 "512, learned positions; teacher-forced cross-entropy",
                 result, ["autoregressive", "gad", f"dag@{DAT}:strategy=lookahead"]),
    }
    for name, text in cards.items():
        (models.MODELS_DIR / name / "README.md").write_text(text)
        print(f"card -> {models.MODELS_DIR / name / 'README.md'}")
    print(bench.format_table(result))
