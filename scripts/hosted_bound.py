"""How long the heaviest requests hosted mode allows hold the machine: each tab's worst click, every size at its hosted
limit (playground/hosted.py LIMITS), timed as the app spends it.

    python scripts/hosted_bound.py [--threads 1] [--only NAME]

A click is timed from its warm-up runs to its last recorded run (Generate: the method, then autoregressive decoding
to compare; Compare: four runs; Diffusion: slow, fast and one run per curve threshold, each judged by tiny-code's
perplexity as the tab does). Worst case on purpose: the longest prompt allowed (2,000 characters of standard-library
code), every token asked for written (no stop at end-of-text), trees grown to full depth (min_path 0), the curve at
the thresholds that commit the fewest tokens per forward, FreeDave without a KV cache (Generate lets a visitor
choose that; the Diffusion tab does not). Generate's playback comes on top (at most
views.playback.LONGEST_S, 12 s). Prints seconds per click, tokens, and the bytes each run stored (README "Hosted
mode").
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: run as `python scripts/...`

from playground import engine, hosted  # noqa: E402
from playground.analysis import quality  # noqa: E402
from playground.compare import diffusion as cd  # noqa: E402
from playground.compare import drafting  # noqa: E402
from playground.events import RunFinished  # noqa: E402
from playground.storage.recorder import Recorder  # noqa: E402

L = hosted.LIMITS
TOKENS = L["max_new_tokens"]
TREE = {"nodes": L["nodes"], "depth": L["depth"], "topk": L["topk"], "min_path": 0.0}


def long_prompt() -> str:
    """About LIMITS' prompt characters of real code: the standard library's json decoder."""
    import json.decoder
    return inspect.getsource(json.decoder)[: L["prompt characters"]]


def request(prompt: str, method: str, model: str = "tiny-code", draft: str | None = None, **params) -> engine.Request:
    return engine.Request(prompt=prompt, model=model, method=method, draft=draft, max_new_tokens=TOKENS,
                          params=params, stop_at_eos=False)


def clicks(prompt: str) -> dict[str, list[engine.Request]]:
    """Each tab's heaviest click, as the requests it runs one after the other."""
    ar = request(prompt, "autoregressive")
    generate = {
        "tree_speculative": request(prompt, "tree_speculative", draft="tiny-code-draft", **TREE),
        "eagle": request(prompt, "eagle", draft="tiny-code-eagle", **TREE),
        "token_recycling": request(prompt, "token_recycling", nodes=L["nodes"], depth=L["depth"], k=L["k"]),
        "speculative": request(prompt, "speculative", draft="tiny-code-draft", gamma=L["gamma"]),
        "self_speculative": request(prompt, "self_speculative", gamma=L["gamma"], schedule="constant"),
        "copyspec": request(prompt, "copyspec", draft="tiny-code-draft", gamma=L["gamma"]),
    }
    out = {f"Generate {name}": [r, ar] for name, r in generate.items()}
    out["Generate tree_speculative, transformers runtime"] = [
        replace(generate["tree_speculative"], runtime="transformers"), replace(ar, runtime="transformers")]
    out["Generate diffusion freedave"] = [request(prompt, "diffusion", model="tiny-code-diffusion",
                                                  strategy="freedave", candidates=L["candidates"], block=L["block"],
                                                  cache="none")]
    out["Compare"] = [replace(r, stop_at_eos=False) for r in drafting.requests(prompt, "tiny-code",
                                                                               "tiny-code-draft", TOKENS)]
    slow, fast = cd.requests(prompt, "tiny-code-diffusion", TOKENS, "freedave", 0.9, L["block"])
    fast = replace(fast, params={**fast.params, "candidates": L["candidates"]})  # the tab leaves the cache to FreeDave
    curve = [cd.curve_request(prompt, "tiny-code-diffusion", TOKENS, 1.0 - i / 100, L["block"])
             for i in range(L["curve thresholds"])]
    out["Diffusion tab"] = [replace(r, stop_at_eos=False) for r in (slow, fast, *curve)]
    return out


def timed(requests: list[engine.Request], recorder: Recorder) -> tuple[float, list[tuple[str, int, int, float]]]:
    """Seconds for the whole click (warm-ups included), and per run: method, tokens, bytes stored, seconds."""
    start, rows = time.perf_counter(), []
    for r in requests:
        engine.warm_up(r)
    for r in requests:
        began = time.perf_counter()
        finished = next(e for e in recorder.record(engine.generate(r)) if isinstance(e, RunFinished))
        if r.method == "diffusion":  # the Diffusion tab judges each output under tiny-code
            quality.generative_perplexity(engine.prepare(r).prompt_ids, finished.token_ids)
        stored = sum(len(json.dumps(s)) for s in recorder.export(finished.run_id)["steps"])
        rows.append((r.method, len(finished.token_ids), stored, time.perf_counter() - began))
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", help="clicks whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hosted.enable()
    prompt = long_prompt()
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(Path(folder) / "runs.db")
        print(f"prompt: {len(prompt)} characters; limits: {json.dumps(L)}; {args.threads} thread(s)")
        for name, requests in clicks(prompt).items():
            if args.only and args.only not in name:
                continue
            seconds, rows = timed(requests, recorder)
            runs = "; ".join(f"{m} {n} tokens {b / 1e6:.2f} MB {s:.1f} s" for m, n, b, s in rows)
            print(f"{name}: {seconds:.1f} s ({runs})", flush=True)


if __name__ == "__main__":
    main()
