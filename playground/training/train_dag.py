"""Train the number translators of the DAG demo on generated French -> English number phrases (playground.data.numbers).

    python -m playground.training.train_dag tokenizer  # word-level tokenizer shared by the three models
    python -m playground.training.train_dag dat        # DA-Transformer, DP loss over all paths + glancing
    python -m playground.training.train_dag nat        # the same network without a graph (plain NAT)
    python -m playground.training.train_dag ar         # autoregressive encoder-decoder (BART)
    python -m playground.training.train_dag dat-kd     # DA-Transformer on tiny-numbers-ar's outputs: gad's drafter
    python -m playground.training.train_dag lm         # bigram LM of the English side, for beam search -> bigram.json
    python -m playground.training.train_dag prompts    # the held-out test set -> assets/prompts/numbers.jsonl
    python -m playground.training.train_dag card       # held-out accuracy and BLEU of each, written into the cards

dat, nat, ar and dat-kd train tiny-numbers-dat, -nat, -ar and -dat-kd in assets/models/.

Batches are generated from (seed, step), so a run resumes from its checkpoint (checkpoints/<name>/) and sees the
same data as an unbroken one. `dat-kd` is sequence-level knowledge distillation (Kim & Rush 2016), as GAD trains its
drafter (Xia et al. 2023): the targets are the autoregressive model's greedy translations of the batch's sources, so
the drafter learns the renderings the verifier itself would write (train `ar` first).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from tqdm import tqdm

from playground.data import numbers
from playground.data.suites import suite_path
from playground.errors import OneLineParser
from playground.models.dat import NEG, DatConfig, DatModel
from playground.models.loading import MODELS_DIR
from playground.runtime.dag_graph import LM_FILE, Bigram
from playground.training.cards_dag import write_cards
from playground.training.configs import CKPT_DIR
from playground.training.hardware import autocast, device_name
from playground.training.loop import lr_at

TOKENIZER_DIR = MODELS_DIR / "tiny-numbers-dat"  # where training reads the tokenizer; every numbers model has a copy
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, BOS, EOS = 0, 1, 2
TEST_SIZE, TEST_SEED = 300, 1


@dataclass
class NumbersTrainConfig:
    name: str
    kind: str                  # dat / nat / ar
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    min_lr_ratio: float = 0.1
    glance_start: float = 0.5  # glancing ratio, annealed linearly to glance_end (Qian et al. 2021)
    glance_end: float = 0.1
    seed: int = 0
    ckpt_every: int = 500
    d_model: int = 128
    ffn: int = 512
    layers: int = 3            # encoder and decoder each
    upsample: int = 3          # DAT graph size = upsample x source length: outputs here are at most ~1.3x their
                               # source, so 3 leaves paths room; every vertex costs decoder compute (latency)
    teacher: str | None = None  # a model whose greedy outputs replace the targets (sequence-level distillation)


CONFIGS = {
    "dat": NumbersTrainConfig("tiny-numbers-dat", "dat"),
    "nat": NumbersTrainConfig("tiny-numbers-nat", "nat", glance_start=0.0, glance_end=0.0),  # plain NAT
    "ar": NumbersTrainConfig("tiny-numbers-ar", "ar"),
    "dat-kd": NumbersTrainConfig("tiny-numbers-dat-kd", "dat", teacher="tiny-numbers-ar"),
}


def build_tokenizer():
    """A word-level tokenizer over every word of both languages; hyphens are tokens of their own, so
    "quarante-trois" is three tokens and decoding puts the hyphen back without spaces."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Split("-", "isolated")])
    pieces = sorted({piece for word in numbers.words() for piece, _ in pre.pre_tokenize_str(word)})
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(SPECIALS + pieces)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()  # "Trois cent douze" reads as "trois cent douze"
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def load_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def build_model(cfg: NumbersTrainConfig, vocab_size: int):
    if cfg.kind == "ar":
        from transformers import BartConfig, BartForConditionalGeneration
        return BartForConditionalGeneration(BartConfig(
            vocab_size=vocab_size, d_model=cfg.d_model, encoder_layers=cfg.layers, decoder_layers=cfg.layers,
            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=cfg.ffn, decoder_ffn_dim=cfg.ffn,
            max_position_embeddings=64, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
            decoder_start_token_id=BOS, forced_eos_token_id=None, scale_embedding=True, dropout=0.0))
    return DatModel(DatConfig(vocab_size=vocab_size, d_model=cfg.d_model, ffn=cfg.ffn, encoder_layers=cfg.layers,
                              decoder_layers=cfg.layers, graph=cfg.kind == "dat", upsample=cfg.upsample))


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows])


def batch_at(step: int, cfg: NumbersTrainConfig, tokenizer, teacher=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources [B, S] (ending in </s>) and targets [B, M] (<s> ... </s>), padded, for this step; with a teacher,
    the targets are its greedy translations."""
    batch = numbers.examples(cfg.batch_size, seed=cfg.seed * 1_000_003 + step, heldout=False)
    sources = pad(tokenizer([e.source for e in batch])["input_ids"])
    if teacher is not None:
        return sources, teacher_targets(teacher, sources)
    return sources, pad([[BOS] + ids for ids in tokenizer([e.target for e in batch])["input_ids"]])


@torch.no_grad()  # not inference_mode: the loss's gather saves these ids for backward
def teacher_targets(teacher, sources: torch.Tensor) -> torch.Tensor:
    """The teacher's greedy outputs, <s> ... </s> then padding (generate pads finished rows with pad_token_id)."""
    return teacher.generate(input_ids=sources, attention_mask=sources != PAD, do_sample=False, num_beams=1,
                            max_new_tokens=DatConfig().max_target_length, pad_token_id=PAD, eos_token_id=EOS)


def path_scores(token_logprobs, links, targets, reduce) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The DA-Transformer dynamic program over paths. f_0(0) = log P(y_0|v_0); f_i(j) = log P(y_i|v_j) +
    reduce_k (f_{i-1}(k) + log E[k, j]), with reduce = logsumexp (the loss: all paths) or max (the best alignment).
    Returns f as [B, M, L] and, for max, the argmax parents of each step."""
    emit = token_logprobs.gather(2, targets[:, None, :].expand(-1, token_logprobs.shape[1], -1)).transpose(1, 2)
    f = torch.full_like(emit[:, 0], NEG)
    f[:, 0] = emit[:, 0, 0]
    rows, parents = [f], []
    for i in range(1, targets.shape[1]):
        totals = rows[-1][:, :, None] + links  # [B, from, to]
        if reduce == "max":
            best, parent = totals.max(1)
            parents.append(parent)
        else:
            best = totals.logsumexp(1)
        rows.append(emit[:, i] + best)
    return torch.stack(rows, 1), parents


def dag_loss(out, targets: torch.Tensor) -> torch.Tensor:
    """-log P(Y|X) summed over all paths, per target token: -f_{M-1}(L-1) / M, averaged over the batch."""
    f, _ = path_scores(out.token_logprobs.float(), out.links.float(), targets, "logsumexp")  # fp32 under autocast
    lengths = (targets != PAD).sum(1)
    last_vertex = out.vertex_mask.sum(1) - 1
    final = f[torch.arange(len(f)), lengths - 1, last_vertex]
    return -(final / lengths).mean()


@torch.no_grad()
def best_alignment(out, targets: torch.Tensor) -> torch.Tensor:
    """The vertex each target token sits on in the likeliest path, [B, M] (-1 for padding)."""
    _, parents = path_scores(out.token_logprobs.float(), out.links.float(), targets, "max")
    lengths = (targets != PAD).sum(1).tolist()
    vertex = (out.vertex_mask.sum(1) - 1).tolist()
    aligned = torch.full(targets.shape, -1)
    for b, m in enumerate(lengths):
        j = vertex[b]
        for i in range(m - 1, -1, -1):
            aligned[b, i] = j
            if i:
                j = int(parents[i - 1][b, j])
    return aligned


def glance_inputs(out, targets: torch.Tensor, aligned: torch.Tensor, ratio: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Glancing: per example, feed ratio x (wrongly predicted tokens on the alignment) gold tokens, at random
    target positions, into their aligned vertices. [B, L] of token ids, -1 where nothing is fed."""
    glance = torch.full(out.vertex_mask.shape, -1)
    predicted = out.token_logprobs.argmax(-1)
    for b in range(len(targets)):
        real = (aligned[b] >= 0).nonzero().flatten()
        vertices = aligned[b, real]
        wrong = int((predicted[b, vertices] != targets[b, real]).sum())
        count = int(ratio * wrong)
        if count:
            pick = real[torch.randperm(len(real), generator=gen)[:count]]
            glance[b, aligned[b, pick]] = targets[b, pick]
    return glance


def nat_loss(model, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Plain NAT: as many vertices as target tokens, cross-entropy at each, plus the length head's."""
    lengths = (targets != PAD).sum(1)
    out = model(input_ids=sources, vertices=lengths)
    tokens = F.nll_loss(out.token_logprobs.transpose(1, 2), targets, ignore_index=PAD)
    length = F.cross_entropy(out.length_logits, lengths.clamp(max=model.config.max_target_length - 1))
    return tokens + 0.1 * length


def dat_loss(model, sources: torch.Tensor, targets: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    if ratio > 0:  # glancing: a first pass without gradient finds the alignment and how wrong the model is
        with torch.no_grad():
            model.eval()
            first = model(input_ids=sources)
            model.train()
            glance = glance_inputs(first, targets, best_alignment(first, targets), ratio, gen)
        return dag_loss(model(input_ids=sources, glance=glance), targets)
    return dag_loss(model(input_ids=sources), targets)


def ar_loss(model, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    labels = targets[:, 1:].masked_fill(targets[:, 1:] == PAD, -100)
    return model(input_ids=sources, attention_mask=sources != PAD, decoder_input_ids=targets[:, :-1],
                 labels=labels).loss


def loss_at(model, cfg: NumbersTrainConfig, step: int, sources, targets, gen) -> torch.Tensor:
    if cfg.kind == "ar":
        return ar_loss(model, sources, targets)
    if cfg.kind == "nat":
        return nat_loss(model, sources, targets)
    ratio = cfg.glance_start + (cfg.glance_end - cfg.glance_start) * step / max(1, cfg.steps)
    return dat_loss(model, sources, targets, ratio, gen)


def train(cfg: NumbersTrainConfig, device: str = "cpu") -> None:
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer()
    teacher = None
    if cfg.teacher:
        from transformers import AutoModelForSeq2SeqLM
        teacher = AutoModelForSeq2SeqLM.from_pretrained(MODELS_DIR / cfg.teacher).to(device).eval()
    model = build_model(cfg, len(tokenizer)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    ckpt = CKPT_DIR / cfg.name / "checkpoint.pt"
    state = {"step": 0, "seconds": 0.0, "losses": []}
    if ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        print(f"resuming {cfg.name} at step {state['step']}")
    gen = torch.Generator().manual_seed(cfg.seed + state["step"])
    model.train()
    bar = tqdm(range(state["step"], cfg.steps), initial=state["step"], total=cfg.steps, desc=cfg.name)
    start = time.perf_counter() - state["seconds"]
    for step in bar:
        sources, targets = (t.to(device) for t in batch_at(step, cfg, tokenizer, teacher))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)  # reads lr, warmup, steps and min_lr_ratio, as TrainConfig has them
        with autocast(torch.device(device)):
            loss = loss_at(model, cfg, step, sources, targets, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["losses"].append(round(float(loss), 4))
        bar.set_postfix(loss=f"{float(loss):.3f}")
        state["step"], state["seconds"] = step + 1, time.perf_counter() - start
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, ckpt)
    save(model.cpu().eval(), tokenizer, cfg, state, device)


def save(model, tokenizer, cfg: NumbersTrainConfig, state: dict, device: str) -> None:
    out = MODELS_DIR / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    facts = {"config": asdict(cfg), "steps": state["step"], "train_seconds": round(state["seconds"], 1),
             "device": device_name() if device == "cpu" else device,
             "parameters": sum(p.numel() for p in model.parameters()),
             "final_loss": sum(state["losses"][-50:]) / max(1, len(state["losses"][-50:]))}
    (out / "training.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"saved {out} ({facts['parameters']:,} parameters, {facts['train_seconds']:.0f} s)")


def write_bigram(examples: int = 20_000) -> None:
    """The bigram LM beam search may add: fitted on the English side of training examples (never held-out ones)."""
    tokenizer = load_tokenizer()
    batch = numbers.examples(examples, seed=12345, heldout=False)
    sequences = [[BOS] + ids for ids in tokenizer([e.target for e in batch])["input_ids"]]
    Bigram.fit(sequences, len(tokenizer)).save(TOKENIZER_DIR / LM_FILE)
    print(f"bigram LM -> {TOKENIZER_DIR / LM_FILE}")


def write_prompts(count: int = TEST_SIZE) -> None:
    """The test set: `count` distinct held-out numbers, French prompt, the number and every valid rendering."""
    path = suite_path("numbers")
    rows = [{"prompt": e.source, "number": e.number, "references": sorted(numbers.renderings(e.number))}
            for e in numbers.examples(count, seed=TEST_SEED, heldout=True)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} held-out prompts -> {path}")


def write_tokenizer() -> None:
    """Into every numbers model's folder: they share it (gad needs the same ids on both sides)."""
    tokenizer = build_tokenizer()
    for cfg in CONFIGS.values():
        tokenizer.save_pretrained(MODELS_DIR / cfg.name)
        print(f"tokenizer -> {MODELS_DIR / cfg.name}")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m playground.training.train_dag",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["tokenizer", *CONFIGS, "lm", "prompts", "card"])
    parser.add_argument("--steps", type=int, help="override the number of training steps")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.what in ("tokenizer", "lm", "prompts"):
        return {"tokenizer": write_tokenizer, "lm": write_bigram, "prompts": write_prompts}[args.what]()
    if args.what == "card":
        return write_cards()
    cfg = CONFIGS[args.what]
    train(replace(cfg, steps=args.steps) if args.steps else cfg, args.device)


if __name__ == "__main__":
    main()
