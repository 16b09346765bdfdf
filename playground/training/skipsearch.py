"""Find the sub-layers a model should skip when it drafts for itself, by measuring tokens/s.

    python -m playground.training.skipsearch --model tiny-code [--trials 60] [--prompts 6] [--max-new-tokens 64]

Draft & Verify (arXiv 2309.08168) picks the skip set by Bayesian optimisation of the measured speed. Here the
optimiser is Optuna's TPE sampler (a sequential model-based, i.e. Bayesian, optimiser) over one on/off choice per
sub-layer (layer 0's attention always runs). Each trial decodes a calibration set of held-out prompts greedily with
`self_speculative` and that skip set, and scores it by tokens per second. The first trials are the obvious
candidates (Unified Layer Skipping of a quarter, half and three quarters of the layers, early exit at a quarter and
at half depth). A single short trial is noisy and the best of sixty noisy trials is optimistic, so the search ends
with a final round: the candidates and the five best trials decode a larger calibration set again, side by side
with autoregressive decoding, alternating their order, and the fastest there wins. The calibration prompts are cut
from held-out files with another seed than the benchmark suites, so no benchmark sees the prompts the set was tuned
on. The result, with every trial and the final round, is written to skip_set.json beside the model, where
`self_speculative` finds it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from playground import engine
from playground.data import stdlib as data
from playground.errors import OneLineParser
from playground.methods.self_speculative import (
    SKIP_FILE,
    exit_skip,
    sublayer_name,
    unified_skip,
)
from playground.models import loading as models
from playground.runtime.sublayers import all_sublayers

CALIBRATION_SEED = 7  # the benchmark suite uses seed 0


def calibration_prompts(tokenizer, n: int) -> list[str]:
    return data.heldout_prompts(tokenizer, n, seed=CALIBRATION_SEED)


def measure(model: str, prompts: list[str], max_new_tokens: int, method: str, params: dict) -> dict:
    """Tokens/s of one configuration over all prompts, with its mean accepted tokens per target forward."""
    tokens = forwards = 0
    seconds = 0.0
    for prompt in prompts:
        req = engine.Request(prompt=prompt, model=model, method=method, max_new_tokens=max_new_tokens,
                             params=params, stop_at_eos=False)
        start = time.perf_counter()
        *_, ev = engine.generate(req)  # the last event: the finished run, or its error
        seconds += time.perf_counter() - start
        if ev.status != "finished":
            raise RuntimeError(f"{method} {params} failed: {ev.error}")
        tokens, forwards = tokens + ev.stats.new_tokens, forwards + ev.stats.target_forwards
    return {"tokens": tokens, "seconds": seconds, "forwards": forwards, "tokens_per_s": tokens / seconds,
            "mean_accepted": tokens / max(1, forwards)}


def final_round(model: str, finalists: dict[str, list[str]], prompts: list[str], max_new_tokens: int,
                rounds: int) -> dict[str, dict]:
    """Measure the finalists again, side by side with autoregressive decoding, alternating their order prompt by
    prompt. The best of many single noisy trials is optimistic (the winner's curse); this pick is not."""
    configs = {"autoregressive": ("autoregressive", {}),
               **{label: ("self_speculative", {"skip": ",".join(skip)}) for label, skip in finalists.items()}}
    totals = {label: {"tokens": 0, "seconds": 0.0, "forwards": 0} for label in configs}
    jobs = [(r, i) for r in range(rounds) for i in range(len(prompts))]
    for n, (_, i) in enumerate(tqdm(jobs, desc="final round")):
        for label in (list(configs) if n % 2 == 0 else list(configs)[::-1]):
            got = measure(model, [prompts[i]], max_new_tokens, *configs[label])
            for key in totals[label]:
                totals[label][key] += got[key]
    base = totals["autoregressive"]["tokens"] / totals["autoregressive"]["seconds"]
    return {label: {"skip": finalists.get(label), "tokens_per_s": t["tokens"] / t["seconds"],
                    "speedup": t["tokens"] / t["seconds"] / base, "mean_accepted": t["tokens"] / t["forwards"]}
            for label, t in totals.items()}


def search(model: str, trials: int, n_prompts: int, max_new_tokens: int, seed: int = 0, n_finalists: int = 5,
           final_prompts: int = 12, final_tokens: int = 128, rounds: int = 2) -> dict:
    """TPE over skip sets, scored on `n_prompts` calibration prompts of `max_new_tokens`; then the seed candidates
    and the `n_finalists` best trials measured again on `final_prompts` prompts of `final_tokens`, `rounds` times,
    side by side: the fastest there is the result."""
    import optuna

    loaded = models.load(model)
    n = loaded.model.config.num_hidden_layers
    prompts = calibration_prompts(loaded.tokenizer, n_prompts)
    choices = [s for s in all_sublayers(n) if s != (0, "attn")]
    names = [sublayer_name(s) for s in choices]
    measure(model, prompts[:1], 8, "autoregressive", {})  # warm-up: the first run pays for lazy initialisation

    def objective(trial) -> float:
        skip = [name for name in names if trial.suggest_categorical(name, [False, True])]
        if not skip:
            raise optuna.TrialPruned("nothing skipped: the draft would be the target")
        result = measure(model, prompts, max_new_tokens, "self_speculative", {"skip": ",".join(skip)})
        trial.set_user_attr("mean_accepted", result["mean_accepted"])
        return result["tokens_per_s"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    candidates = {"uls_quarter": unified_skip(n, n // 4), "uls_half": unified_skip(n, n // 2),
                  "uls_three_quarters": unified_skip(n, 3 * n // 4),
                  "early_exit_quarter": exit_skip(loaded.model, max(1, n // 4)),
                  "early_exit_half": exit_skip(loaded.model, max(1, n // 2))}
    seeds: dict[str, set] = {}  # the first trials, in order (tiny models make some candidates empty or equal)
    for label, skip in candidates.items():
        chosen = {sublayer_name(s) for s in skip}
        if chosen and chosen not in seeds.values():
            study.enqueue_trial({name: name in chosen for name in names})
            seeds[label] = chosen
    bar = tqdm(total=trials, desc="skip search")

    def progress(study, trial):
        bar.update(1)
        bar.set_postfix(best=f"{study.best_value:.1f} tok/s" if study.best_trials else "-")

    study.optimize(objective, n_trials=trials, callbacks=[progress])
    bar.close()
    done = [t for t in study.trials if t.value is not None]
    finalists = {label: [sublayer_name(s) for s in candidates[label]] for label in seeds}
    for t in sorted(done, key=lambda t: -t.value):
        skip = [name for name in names if t.params[name]]
        if len(finalists) >= len(seeds) + n_finalists:
            break
        if skip not in finalists.values():
            finalists[f"trial_{t.number}"] = skip
    results = final_round(model, finalists, calibration_prompts(loaded.tokenizer, final_prompts), final_tokens,
                          rounds)
    label = max((k for k in results if k != "autoregressive"), key=lambda k: results[k]["tokens_per_s"])
    best = results[label]
    return {
        "skip": best["skip"],
        "chosen": label,
        "tokens_per_s": best["tokens_per_s"],
        "mean_accepted": best["mean_accepted"],
        "autoregressive_tokens_per_s": results["autoregressive"]["tokens_per_s"],
        "speedup_on_calibration": best["speedup"],
        "final_round": results,
        "seed_candidates": {k: study.trials[i].value for i, k in enumerate(seeds)},
        "trials": [{"skip": [nm for nm in names if t.params[nm]], "tokens_per_s": t.value,
                    "mean_accepted": t.user_attrs.get("mean_accepted")} for t in done],
        "calibration": {"prompts": n_prompts, "seed": CALIBRATION_SEED, "max_new_tokens": max_new_tokens,
                        "final": {"prompts": final_prompts, "max_new_tokens": final_tokens, "rounds": rounds},
                        "method": "self_speculative, default gamma and schedule, greedy"},
        "search": {"sampler": "optuna TPE", "trials": trials, "seed": seed, "finalists": n_finalists,
                   "threads": torch.get_num_threads()},
        "command": f"python -m playground.training.skipsearch --model {model} --trials {trials} --prompts {n_prompts} "
                   f"--max-new-tokens {max_new_tokens} --finalists {n_finalists} --final-prompts {final_prompts} "
                   f"--final-tokens {final_tokens} --rounds {rounds} --seed {seed}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m playground.training.skipsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=6, help="calibration prompts from held-out files")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--finalists", type=int, default=5, help="best trials measured again at the end")
    parser.add_argument("--final-prompts", type=int, default=12, help="calibration prompts of the final round")
    parser.add_argument("--final-tokens", type=int, default=128, help="new tokens per prompt in the final round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the final round's prompts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="where to write the result (default: skip_set.json beside a local model)")
    args = parser.parse_args(argv)
    result = search(args.model, args.trials, args.prompts, args.max_new_tokens, args.seed, args.finalists,
                    args.final_prompts, args.final_tokens, args.rounds)
    out = Path(args.out) if args.out else Path(models.resolve(args.model)) / SKIP_FILE
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"best: skip {', '.join(result['skip'])}: {result['tokens_per_s']:.1f} tokens/s, "
          f"{result['speedup_on_calibration']:.2f}x autoregressive on the calibration prompts; written to {out}")


if __name__ == "__main__":
    main()
