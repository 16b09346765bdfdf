"""llama.cpp beside us (issue 22): `bench` peers that run llama.cpp, through llama-cpp-python, on a GGUF copy of the
same weights (f32, playground.bench.gguf_convert), fed our tokenizer's ids, greedy, on the CPU.

- `llamacpp_greedy`: `Llama.generate` one token per forward, the C++ loop people use.
- `llamacpp_speculative`: the same with `draft_model=`, llama-cpp-python's hook for speculation: a LlamaDraftModel
  proposes ids, the target checks them in one batch and keeps them up to its first disagreement plus its own token.
  Ours, GreedyDraft, drafts `gamma` (4, our `speculative`'s default) tokens greedily with a second Llama on the draft
  model's GGUF, keeping its KV cache across steps as our drafter does, never past the budget.
- `llamacpp_prompt_lookup`: `draft_model=LlamaPromptLookupDecoding` (its built-in prompt lookup) with transformers'
  defaults, as `hf_prompt_lookup` has: n-grams of up to 2 tokens, 10 tokens copied.

Target forwards are counted by wrapping the target Llama's `eval` (one call, one llama_decode batch, per forward).
Threads: torch's (bench's --threads), for both the single-token and the batch path. The KV cache is f32 (llama.cpp's
default is f16), so the logits are the f32 model's; `python -m playground.bench.llamacpp` times one forward of each
implementation on its own.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from playground.bench.gguf_convert import PEERS_INSTALL, gguf_path
from playground.errors import OneLineParser, PlaygroundError
from playground.models import loading as models

PEERS = ("llamacpp_greedy", "llamacpp_speculative", "llamacpp_prompt_lookup")
NEEDS_DRAFT = ("llamacpp_speculative",)
GAMMA = 4
LOOKUP = {"max_ngram_size": 2, "num_pred_tokens": 10}


def require():
    """llama_cpp (and gguf, which writes its model file), or one line saying how to install them."""
    try:
        import gguf  # noqa: F401
        import llama_cpp
    except ImportError:
        raise PlaygroundError(f"the llama.cpp peers ({', '.join(PEERS)}) need llama-cpp-python and gguf, not "
                              f"installed here: {PEERS_INSTALL} (it compiles llama.cpp, a few minutes)") from None
    return llama_cpp


def new_llama(loaded: models.LoadedModel, threads: int, **kwargs):
    """A Llama on the model's cached GGUF: context as long as the model's, one batch for any prompt, f32 KV cache,
    each eval counted in `.forwards`."""
    llama_cpp = require()
    context = loaded.max_positions or 2048
    llm = llama_cpp.Llama(str(gguf_path(loaded)), n_ctx=context, n_batch=context, n_threads=threads,
                          n_threads_batch=threads, type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
                          verbose=False, **kwargs)
    llm.forwards = 0
    plain = llm.eval

    def counted(tokens):
        llm.forwards += 1
        plain(tokens)

    llm.eval = counted  # generate() calls self.eval: the instance attribute comes first
    return llm


def last_logits(llm) -> np.ndarray:
    """The logits of the last token evaluated (read in place from the context, no copy of the batch's rows)."""
    llama_cpp = require()
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))


@dataclass
class GreedyDraft:
    """llama-cpp-python's LlamaDraftModel (registered as one): given every id so far, the next `gamma` greedy ids of
    a small Llama. Its KV cache keeps the longest prefix it shares with the ids (rejected drafts are dropped), so a
    step feeds it only the new ids; `limit` (prompt + budget) keeps drafts within the tokens still to write."""
    llm: object
    gamma: int = GAMMA
    limit: int | None = None
    forwards: int = 0

    def start(self, limit: int) -> None:
        """A new run of at most `limit` ids, prompt included: nothing cached (a repeated prompt is read again, as our
        drafter reads it), nothing counted."""
        self.llm.reset()
        self.limit, self.forwards = limit, 0

    def __call__(self, input_ids: np.ndarray, /, **kwargs) -> np.ndarray:
        ids = input_ids.tolist()
        n = self.gamma if self.limit is None else min(self.gamma, self.limit - len(ids) - 1)
        if n <= 0:
            return np.array([], dtype=np.intc)
        llm = self.llm
        have = llm.input_ids[:llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(have), len(ids) - 1) and have[keep] == ids[keep]:
            keep += 1
        llm.n_tokens = keep  # eval removes the cached entries past it
        feed, out = ids[keep:], []
        for _ in range(n):
            llm.eval(feed)
            out.append(int(last_logits(llm).argmax()))
            feed = out[-1:]
        self.forwards += n
        return np.array(out, dtype=np.intc)


_peers: dict[tuple, object] = {}


def peer_llama(name: str, target: models.LoadedModel, draft: models.LoadedModel | None, threads: int):
    """The target's Llama for peer `name` (made once per process and thread count)."""
    key = (name, target.name, draft.name if draft else None, threads)
    if key not in _peers:
        require()
        from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding

        LlamaDraftModel.register(GreedyDraft)
        drafter = None
        if name == "llamacpp_speculative":
            if draft is None:
                raise PlaygroundError("llamacpp_speculative needs a draft model (--draft NAME)")
            drafter = GreedyDraft(new_llama(draft, threads))
        elif name == "llamacpp_prompt_lookup":
            drafter = LlamaPromptLookupDecoding(**LOOKUP)
        _peers[key] = new_llama(target, threads, draft_model=drafter)
    return _peers[key]


def run(name: str, target: models.LoadedModel, draft: models.LoadedModel | None, prompt: str,
        max_new_tokens: int) -> tuple[list[int], float, int]:
    """Greedy llama.cpp generation from our tokenizer's ids; returns new ids (up to and with end-of-text, as
    transformers' generate and our methods give them), seconds and target forwards."""
    llm = peer_llama(name, target, draft, torch.get_num_threads())
    eos = target.tokenizer.eos_token_id
    start = time.perf_counter()
    ids = target.tokenizer(prompt)["input_ids"]
    llm.reset()  # a fresh run: generate() would otherwise reuse the cached prompt of the run before
    llm.forwards = 0
    if isinstance(llm.draft_model, GreedyDraft):
        llm.draft_model.start(len(ids) + max_new_tokens)
    out = []
    tokens = llm.generate(ids, temp=0.0)
    try:
        for token in tokens:
            out.append(int(token))
            if token == eos or len(out) >= max_new_tokens:
                break
    finally:
        tokens.close()
    return out, time.perf_counter() - start, llm.forwards


# ------------------------------------------------------------ one forward of each, on its own


def interleaved_medians(steps: dict, repeats: int, block: int = 20) -> dict:
    """Median ms of each step over `repeats` timings, taken in turns of `block` calls in a row (as bench alternates
    whole runs): a burst of load on a shared machine falls on every step alike, while within a turn a step finds
    its weights in the caches as it does while decoding. A turn's first call is not counted."""
    times = {key: [] for key in steps}
    for _ in range(-(-repeats // block)):
        for key, step in steps.items():
            for i in range(block + 1):
                start = time.perf_counter()
                step()
                if i:
                    times[key].append(time.perf_counter() - start)
    return {key: 1000 * sorted(t)[len(t) // 2] for key, t in times.items()}


def forward_costs(model: str, context: int, repeats: int, sizes: tuple[int, ...] = (1, GAMMA + 1)) -> dict:
    """Median ms of one forward over N new tokens (N in `sizes`: 1 is a decoding step, gamma + 1 a verification)
    after `context` tokens, llama.cpp's decode and our CachedLM's; the same model's matrix products alone in torch
    (F.linear on one row, every weight once: the arithmetic a one-token forward cannot skip); and the number of
    torch operators one one-token forward dispatches."""
    from playground.runtime.lm import CachedLM

    loaded = models.load(model)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, loaded.vocab_size, (context + max(sizes),), generator=gen).tolist()
    llm, lm = new_llama(loaded, torch.get_num_threads()), CachedLM(loaded.model)
    llm.reset()
    llm.eval(ids[:context])
    lm.forward(ids[:context])

    def llama_step(n: int):
        llm.n_tokens = context
        llm.eval(ids[context:context + n])

    def torch_step(n: int):
        lm.crop(context)
        lm.forward(ids[context:context + n])

    weights = [m.weight for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    rows = [torch.randn(1, w.shape[1]) for w in weights]

    @torch.inference_mode()
    def matmuls():
        for row, w in zip(rows, weights):
            torch.nn.functional.linear(row, w)

    with torch.profiler.profile() as prof:
        torch_step(1)
    steps = {("matmuls", 1): matmuls}
    for n in sizes:
        steps[("llamacpp", n)], steps[("ours", n)] = (lambda n=n: llama_step(n)), (lambda n=n: torch_step(n))
    ms = interleaved_medians(steps, repeats)
    return {"model": loaded.name, "context": context, "threads": torch.get_num_threads(),
            "llamacpp_ms": {n: ms[("llamacpp", n)] for n in sizes}, "ours_ms": {n: ms[("ours", n)] for n in sizes},
            "torch_matmuls_ms": ms[("matmuls", 1)], "linear_layers": len(weights),
            "torch_operators": sum(1 for e in prof.events() if e.name.startswith("aten::"))}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m playground.bench.llamacpp",
                           description="time one forward of llama.cpp and of ours on the same model")
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--context", type=int, default=64, help="tokens already in the KV cache")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    for option in ("context", "repeats", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    torch.set_num_threads(args.threads)
    try:
        r = forward_costs(args.model, args.context, args.repeats)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{r['model']}, after {r['context']} tokens, {r['threads']} threads, median of {args.repeats} (ms):")
    for n in r["ours_ms"]:
        print(f"  forward over {n} token(s): llama.cpp {r['llamacpp_ms'][n]:7.3f}, ours {r['ours_ms'][n]:7.3f}")
    print(f"  ours dispatches {r['torch_operators']} torch operators a one-token forward; its "
          f"{r['linear_layers']} matrix products alone in torch take {r['torch_matmuls_ms']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
