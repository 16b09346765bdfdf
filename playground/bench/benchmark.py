"""Side-by-side benchmark: every method on every prompt in one process, methods alternating, greedy.

Our methods run through the engine exactly as the app runs them (recording off). Peers run transformers' own
`generate` on the same loaded models: `hf_greedy` (plain greedy), `hf_assisted` (assisted generation with the
draft as `assistant_model`) and `hf_prompt_lookup` (`prompt_lookup_num_tokens=10`). Target forward passes of
peers are counted with a forward hook on the target. The `llamacpp_*` peers run llama.cpp on a GGUF copy of the same
weights (`playground.bench.llamacpp`; optional: requirements-peers.txt).
Speeds are totals: all tokens over all time per method, so long and short prompts weigh by their tokens.
The baseline is `autoregressive`; for a diffusion model (a masked LM) it is `diffusion:strategy=fixed_steps` (one
token per forward), the canvas is always filled (no stop at end-of-text: every run does the same work), and each row
also gets the quality of its outputs: generative perplexity under tiny-code (pooled over all output tokens) and
agreement with the baseline.
Prompts come from a suite of `assets/prompts/` by name (see `playground.data.suites`) or from any JSONL file.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from playground import engine
from playground.analysis import quality, theory
from playground.bench import llamacpp
from playground.data import numbers, suites
from playground.errors import PlaygroundError
from playground.events import Stats, Step
from playground.methods import METHODS, parse_params
from playground.models import loading as models
from playground.models.loading import is_masked_lm
from playground.runtime.tree_attention import forward_tree
from playground.storage.recorder import Recorder, db_path

PEERS = ("hf_greedy", "hf_assisted", "hf_prompt_lookup", *llamacpp.PEERS)
PEERS_WITH_DRAFT = ("hf_assisted", *llamacpp.NEEDS_DRAFT)


@dataclass
class Tally:
    tokens: int = 0
    seconds: float = 0.0
    target_forwards: int = 0
    outputs: list = field(default_factory=list)
    steps: list = field(default_factory=list)  # every run's steps (ours only): the theory columns read them
    perplexity: list = field(default_factory=list)
    agreement: list = field(default_factory=list)
    solved: list = field(default_factory=list)
    translation: dict = field(default_factory=dict)  # accuracy, BLEU, mixed renderings (suites with references)
    runs: int = 0

    def row(self, baseline: Tally | None) -> dict:
        drafted = sum(s.proposed for s in self.steps)
        tps = self.tokens / self.seconds if self.seconds else 0.0
        base_tps = baseline.tokens / baseline.seconds if baseline and baseline.seconds else None
        latency = self.seconds / self.runs if self.runs else None
        base_latency = baseline.seconds / baseline.runs if baseline and baseline.runs else None
        return {"tokens_per_s": tps, "speedup": tps / base_tps if base_tps else None,
                "latency_ms": 1000 * latency if latency else None,
                "latency_speedup": base_latency / latency if latency and base_latency else None,
                "mean_accepted": self.tokens / self.target_forwards if self.target_forwards else None,
                "acceptance_rate": sum(s.accepted for s in self.steps) / drafted if drafted else None,
                "identical_to_baseline": baseline.outputs == self.outputs if baseline else None,
                "new_tokens": self.tokens, "seconds": self.seconds, "target_forwards": self.target_forwards,
                **({"generative_perplexity": quality.pooled_perplexity(self.perplexity),
                    "agreement": mean(self.agreement)}
                   if self.agreement else {}), **({"solved": mean(self.solved)} if self.solved else {}),
                **self.translation, **self.theory(baseline)}

    def theory(self, baseline: Tally | None) -> dict:
        """What theory predicts (chains: i.i.d. alpha; trees: positional acceptance, alpha = p_1): tokens per
        forward and the ideal speedup, and the speedup the forwards' costs alone explain; see playground.theory."""
        if not (self.steps and baseline and baseline.steps and baseline is not self):
            return {}
        s = theory.speedup(self.steps, Stats.from_steps(self.steps, self.seconds),
                           Stats.from_steps(baseline.steps, baseline.seconds))
        if s is None:
            return {}
        p = s.prediction
        return {"cost_speedup": s.from_costs, "c": s.c, "v": s.v,
                **({"alpha": p.alpha, "theory_tok_fwd": p.predicted, "ideal_speedup": s.ideal} if p else {})}


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[:ids.index(eos)] if eos in ids else ids


def read_records(suite_or_path: str) -> list[dict]:
    """The records of a suite (complete, repeat, edit, docstring, dependent) or of a JSONL file with a 'prompt'
    per line (and maybe an 'answer' the continuation must start with)."""
    path = suites.resolve(suite_or_path)
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except OSError as exc:
        raise PlaygroundError(f"cannot read prompts file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # a binary file: say so instead of a traceback
        raise PlaygroundError(f"{path} is not a JSONL text file: invalid UTF-8 at byte {exc.start}") from None
    prompts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            prompts.append({"prompt": record["prompt"], "answer": record.get("answer"),
                            "references": record.get("references"), "number": record.get("number")})
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise PlaygroundError(f"{path}:{n}: each line must be a JSON object with a 'prompt' field") from None
        wrong = record_error(prompts[-1])
        if wrong:
            raise PlaygroundError(f"{path}:{n}: {wrong}")
    if not prompts:
        raise PlaygroundError(f"{path} holds no prompts")
    return prompts


def record_error(record: dict) -> str | None:
    """What is wrong with the types of a prompt record's fields, or None. A prompt of 5 would otherwise run as
    the text '5', and a wrong 'answer', 'references' or 'number' fail with a traceback after the whole run."""
    if not isinstance(record["prompt"], str):
        return f"'prompt' must be a string, got {json.dumps(record['prompt'])}"
    if record["answer"] is not None and not isinstance(record["answer"], str):
        return "'answer' must be a string"
    refs = record["references"]
    if refs is not None and not (isinstance(refs, list) and refs and all(isinstance(r, str) for r in refs)):
        return "'references' must be a non-empty list of strings"
    number = record["number"]
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        return "'number' must be a whole number"
    return None


def now() -> float:
    """The clock, read once the device has finished its queued work (on a GPU the timer must not run ahead)."""
    models.synchronize()
    return time.perf_counter()


def run_ours(req: engine.Request) -> tuple[list[int], float, int, list[Step]]:
    """Engine run timed end to end; returns new ids, seconds, target forwards and the steps."""
    steps = []
    start = now()
    for ev in engine.generate(req):
        if isinstance(ev, Step):
            steps.append(ev)
        finished = ev
    seconds = now() - start
    if finished.status != "finished":
        raise PlaygroundError(f"{req.method} failed: {finished.error}")
    return finished.token_ids, seconds, finished.stats.target_forwards, steps


def run_peer(name: str, target: models.LoadedModel, draft: models.LoadedModel | None, prompt: str,
             max_new_tokens: int) -> tuple[list[int], float, int]:
    """transformers' generate (or llama.cpp's), greedy; returns new ids, seconds and the number of target forwards."""
    if name in llamacpp.PEERS:
        return llamacpp.run(name, target, draft, prompt, max_new_tokens)
    calls = [0]
    hook = target.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        start = now()
        ids = target.tokenizer(prompt, return_tensors="pt")["input_ids"].to(target.device)
        kwargs = {"hf_assisted": {"assistant_model": draft.model if draft else None},
                  "hf_prompt_lookup": {"prompt_lookup_num_tokens": 10}}.get(name, {})
        with torch.inference_mode():
            out = target.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                        max_new_tokens=max_new_tokens, pad_token_id=target.tokenizer.pad_token_id,
                                        eos_token_id=target.tokenizer.eos_token_id, **kwargs)
        seconds = now() - start
    finally:
        hook.remove()
    return out[0, ids.shape[1]:].tolist(), seconds, calls[0]


def parse_spec(spec: str) -> tuple[str, dict, str | None]:
    """'speculative:gamma=2:schedule=heuristic' -> ('speculative', {'gamma': '2', 'schedule': 'heuristic'}, None).

    One method can so be benchmarked in several settings side by side; each spec is its own row.
    'dag@tiny-numbers-dat:strategy=beam' runs on its own model instead of --model (and without the draft).
    'autoregressive:runtime=transformers' runs on another runtime than the others (engine.RUNTIMES), and
    'eagle:draft=PATH' with another draft model or head than the default."""
    head, *pairs = [part.strip() for part in spec.split(":")]
    name, _, model = (part.strip() for part in head.partition("@"))
    def error(pair: str) -> str:
        return f"cannot read {pair!r} in method {spec!r}: write METHOD:KEY=VALUE[:KEY=VALUE]"
    return name, parse_params(pairs, error), model or None


def translation_quality(outputs: list[str], records: list[dict]) -> dict:
    """Against the suite's references (every valid output): exact-match accuracy, corpus BLEU (sacrebleu, all
    references at once), and for number phrases the share that names the right number with mixed renderings."""
    import sacrebleu

    refs = [r["references"] for r in records]
    streams = [[rs[min(k, len(rs) - 1)] for rs in refs] for k in range(max(map(len, refs)))]  # pad by repeating
    quality = {"accuracy": mean([out in rs for out, rs in zip(outputs, refs)]),
               "bleu": round(sacrebleu.corpus_bleu(outputs, streams).score, 2)}
    if all(r.get("number") is not None for r in records):
        quality["mixed"] = mean([numbers.judge(out, int(r["number"])) == "mixed" for out, r in zip(outputs, records)])
    return quality


def benchmark(model: str, draft: str | None, methods: list[str], prompts: list[str], max_new_tokens: int,
              repeats: int = 1, params: dict | None = None, progress: bool = True, baseline: str | None = None,
              answers: list | None = None, records: list[dict] | None = None, runtime: str = "auto") -> dict:
    """Each entry of `methods` is a method or peer name, or a spec with its own parameters (see parse_spec);
    `params` go to every method that has them, a spec's own parameters override them. Speedups and identity are
    against `baseline` (default: autoregressive, or one-token-per-forward diffusion on a diffusion model).
    `answers` (one per prompt, or None): what a correct continuation starts with; rows then say the share solved.
    `records` (the suite's, one per prompt): where they give "references", rows get accuracy, BLEU and mixed.
    `runtime`: what runs our methods' causal LMs (a spec's own runtime=... overrides it); peers run transformers."""
    target = models.load(model)
    diffusion = is_masked_lm(target.model)
    baseline = baseline or ("diffusion:strategy=fixed_steps" if diffusion else "autoregressive")
    methods = [baseline, *[m for m in methods if m != baseline]]  # the baseline runs too, listed first
    specs = {m: parse_spec(m) for m in methods}
    unknown = [m for m, (name, _, _) in specs.items() if name not in METHODS and name not in PEERS]
    if unknown:
        raise PlaygroundError(f"unknown method {unknown[0]!r} (methods: {', '.join(METHODS)}; peers: "
                              f"{', '.join(PEERS)})")
    if any(name in llamacpp.PEERS for name, _, _ in specs.values()):
        llamacpp.require()  # before any model is loaded: one line saying how to install it
    draft_name = models.draft_for(model, draft)
    needs_draft = [m for m, (name, _, own_model) in specs.items() if not own_model and (name in PEERS_WITH_DRAFT or (
        name in METHODS and METHODS[name].needs_draft and "causal" in METHODS[name].draft_kinds))]
    draft_lm = models.load(draft_name) if needs_draft and draft_name else None
    if needs_draft and draft_lm is None:
        raise PlaygroundError(f"{needs_draft[0]} needs a draft model (--draft NAME)")
    if draft_lm:
        models.check_pair(target, draft_lm)

    def request(name: str, own: dict, own_model: str | None, prompt: str, n: int) -> engine.Request:
        shared = {k: v for k, v in (params or {}).items() if any(p.name == k for p in METHODS[name].params)}
        own = dict(own)
        ran_on = own.pop("runtime", runtime)
        causal_draft = "causal" in METHODS[name].draft_kinds  # a feature head is the engine's default pairing
        paired = own.pop("draft", None if own_model or not causal_draft else draft_name)
        return engine.Request(prompt=prompt, model=own_model or model, method=name, draft=paired, max_new_tokens=n,
                              params={**shared, **own}, stop_at_eos=not diffusion, runtime=ran_on)

    def once(method: str, prompt: str, n: int) -> tuple[list[int], float, int, list[Step]]:
        name, own, own_model = specs[method]
        if name in PEERS:
            return *run_peer(name, target, draft_lm, prompt, n), []
        return run_ours(request(name, own, own_model, prompt, n))

    for method in methods:  # warm-up: first calls pay for lazy initialisation
        once(method, prompts[0], 8)
    tallies = {m: Tally() for m in methods}
    jobs = [(r, i) for r in range(repeats) for i in range(len(prompts))]
    for r, i in tqdm(jobs, desc="bench", disable=not progress, file=sys.stderr):
        order = methods if (r * len(prompts) + i) % 2 == 0 else methods[::-1]  # alternate to spread drift
        for method in order:
            ids, seconds, forwards, steps = once(method, prompts[i], max_new_tokens)
            t = tallies[method]
            t.tokens, t.seconds = t.tokens + len(ids), t.seconds + seconds
            t.target_forwards += forwards
            t.runs += 1
            t.steps += steps
            if r == 0:
                t.outputs.append(ids)
    base = tallies[baseline]
    if diffusion:  # quality, where outputs may differ: judged on the text before the first end-of-text
        eos = target.tokenizer.eos_token_id
        for t in tallies.values():
            for prompt, ids, ref in zip(prompts, t.outputs, base.outputs):
                ids = until_eos(ids, eos)
                t.perplexity.append(quality.negative_log_likelihood(target.tokenizer(prompt)["input_ids"], ids))
                t.agreement.append(quality.agreement(ids, until_eos(ref, eos)))
    for t in tallies.values():
        t.solved = [target.tokenizer.decode(ids).startswith(a) for ids, a in zip(t.outputs, answers or []) if a]
        if records and all(r.get("references") for r in records):
            t.translation = translation_quality(
                [target.tokenizer.decode(ids, skip_special_tokens=True) for ids in t.outputs], records)
    return {"methods": {m: tallies[m].row(base) for m in methods}, "baseline": baseline, "prompts": len(prompts),
            "max_new_tokens": max_new_tokens, "repeats": repeats, "model": model, "draft": draft_name,
            "threads": torch.get_num_threads(), "device": str(models.device()), "runtime": runtime}


def recording_overhead(model: str, draft: str | None, methods: list[str], prompts: list[str],
                       max_new_tokens: int, repeats: int, db: str, progress: bool = True) -> dict:
    """End-to-end time of each method with and without the SQLite recorder, alternating, on the same prompts."""
    recorder = Recorder(db)
    seconds = {(m, rec): 0.0 for m in methods for rec in (False, True)}
    for m in methods:  # warm-up: model loading and lazy initialisation are not decoding
        for _ in engine.generate(engine.Request(prompt=prompts[0], model=model, method=m, draft=draft,
                                                max_new_tokens=8)):
            pass
    jobs = [(i, m) for _ in range(repeats) for i in range(len(prompts)) for m in methods]
    for n, (i, m) in enumerate(tqdm(jobs, desc="recording overhead", disable=not progress, file=sys.stderr)):
        for rec in ((False, True) if n % 2 == 0 else (True, False)):
            req = engine.Request(prompt=prompts[i], model=model, method=m, draft=draft, max_new_tokens=max_new_tokens)
            start = now()
            events = engine.generate(req)
            for _ in (recorder.record(events) if rec else events):
                pass
            seconds[(m, rec)] += now() - start
    return {"methods": {m: {"seconds_plain": seconds[(m, False)], "seconds_recorded": seconds[(m, True)],
                            "overhead": seconds[(m, True)] / seconds[(m, False)] - 1} for m in methods},
            "prompts": len(prompts), "repeats": repeats, "max_new_tokens": max_new_tokens}


def forward_costs(model: str, draft: str | None, prompt: str, sizes: list[int], repeats: int,
                  runtimes: tuple[str, ...] = ("transformers", "lean")) -> dict:
    """Median milliseconds of one forward over a chain of N draft nodes after the prompt, by N, for the target and
    the draft on each runtime (where the model allows it): what a tree of N nodes costs to verify (target) or one
    expansion of N nodes costs (draft). N = 0 is the plain one-token forward of autoregressive decoding. The
    runtimes alternate within each N, so that drift on a shared machine falls on both alike."""
    lms = {}
    for name in [model] + ([draft] if draft else []):
        loaded = models.load(name)
        ids = loaded.tokenizer(prompt)["input_ids"]
        for runtime in dict.fromkeys(engine.pick_runtime(r, loaded) for r in runtimes):
            lm = engine.wrap(loaded.model, runtime)
            lm.forward(ids[:-1])
            lms[f"{name} ({runtime})"] = (lm, lm.length, ids)
    out = {key: {} for key in lms}
    for n in sizes:
        times = {key: [] for key in lms}
        for r in range(repeats + 1):  # the first is a warm-up
            for key, (lm, cached, ids) in lms.items():
                nodes = [ids[i % len(ids)] for i in range(n)]
                start = now()
                forward_tree(lm, ids[-1:], nodes, list(range(-1, n - 1)))
                if r:
                    times[key].append(now() - start)
                lm.crop(cached)
        for key, ts in times.items():
            out[key][n] = 1000 * sorted(ts)[len(ts) // 2]
    context = len(next(iter(lms.values()))[2])
    return {"ms_by_nodes": out, "context": context, "threads": torch.get_num_threads(), "device": str(models.device())}


COLUMNS = (  # key, header, width, digits, suffix; optional ones show only when some row has them
    ("tokens_per_s", "tokens/s", 10, 1, ""), ("speedup", "speedup", 9, 2, "x"), ("latency_ms", "ms/run", 9, 1, ""),
    ("latency_speedup", "faster", 8, 2, "x"), ("mean_accepted", "tok/fwd", 9, 2, ""),
    ("acceptance_rate", "accept", 8, 2, ""), ("generative_perplexity", "gen ppl", 9, 2, ""),
    ("agreement", "agree", 7, 2, ""), ("solved", "solved", 8, 2, ""), ("accuracy", "acc", 7, 3, ""),
    ("bleu", "BLEU", 7, 1, ""), ("mixed", "mixed", 7, 3, ""), ("alpha", "alpha", 7, 2, ""),
    ("theory_tok_fwd", "theory", 8, 2, ""), ("ideal_speedup", "ideal", 8, 2, "x"), ("cost_speedup", "costs", 8, 2, "x"))
OPTIONAL = ("generative_perplexity", "agreement", "solved", "accuracy", "bleu", "mixed", "alpha", "theory_tok_fwd",
            "ideal_speedup", "cost_speedup")


def format_table(result: dict) -> str:
    rows = result["methods"]
    w = max(16, *(len(name) + 2 for name in rows))
    columns = [c for c in COLUMNS if c[0] not in OPTIONAL or any(c[0] in r for r in rows.values())]
    lines = [f"{result['prompts']} prompts x {result['repeats']}, {result['max_new_tokens']} new tokens, greedy, "
             f"model {result['model']}, draft {result['draft']}, {result['threads']} threads, {result['device']}; "
             f"baseline {result['baseline']}",
             f"{'method':<{w}}" + "".join(f"{head:>{width}}" for _, head, width, _, _ in columns) + "  identical"]
    for name, r in rows.items():
        cells = [(f"{r[key]:.{digits}f}{suffix}" if r.get(key) is not None else "-").rjust(width)
                 for key, _, width, digits, suffix in columns]
        lines.append(f"{name:<{w}}" + "".join(cells) + f"  {r['identical_to_baseline']}")
    return "\n".join(lines)


def main(args) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # generate() warns about config merging on every call
    for option in ("limit", "repeats", "threads"):  # 0 would mean all prompts, no rounds, or a torch error
        value = getattr(args, option)
        if value is not None and value < 1:
            raise PlaygroundError(f"--{option} must be at least 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    records = read_records(args.prompts)[: args.limit]
    prompts = [r["prompt"] for r in records]
    if args.forward_costs:
        sizes = [0, 1, 2, 4, 8, 12, 16, 24, 32, 48, 64]
        result = forward_costs(args.model, args.draft or models.DEFAULT_DRAFT, prompts[0], sizes, args.repeats,
                               ("transformers", "lean") if args.runtime == "auto" else (args.runtime,))
        print(json.dumps(result, indent=2) if args.json else "\n".join(
            [f"ms per forward over N draft nodes after {result['context']} tokens, {result['threads']} threads, "
             f"{result['device']}",
             f"{'N':>4}" + "".join(f"{name:>26}" for name in result["ms_by_nodes"])] +
            [f"{n:>4}" + "".join(f"{row[n]:>26.2f}" for row in result["ms_by_nodes"].values()) for n in sizes]))
        return 0
    if args.recording_overhead:
        result = recording_overhead(args.model, args.draft, methods, prompts,
                                    args.max_new_tokens, args.repeats, db_path(args.db), progress=not args.json)
        print(json.dumps(result, indent=2))
        return 0
    result = benchmark(args.model, args.draft, methods, prompts, args.max_new_tokens,
                       args.repeats, parse_params(args.param), progress=not args.json, baseline=args.baseline,
                       answers=[r["answer"] for r in records], records=records, runtime=args.runtime)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
