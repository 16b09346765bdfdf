"""Each example prompt of the app's Generate tab: `eagle` at its defaults (and other settings) against
`autoregressive`, 128 new tokens, greedy; the best of 3 runs of each, alternating, in one process.

    python scripts/example_speedups.py [--threads N]

Prints, per example, each setting's speedup (autoregressive's best time over its best time) and whether its output is
identical to autoregressive's (docs/BENCHMARKS.md "EAGLE and the lean runtime").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: run as `python scripts/...`

from playground import engine  # noqa: E402
from playground.app.common import EXAMPLES  # noqa: E402
from playground.bench.benchmark import run_ours  # noqa: E402

SETTINGS = {"autoregressive": ("autoregressive", {}),
            "eagle": ("eagle", {}),  # defaults: a chain of up to 6, stopped below confidence 0.4
            "eagle dynamic tree": ("eagle", {"tree": "dynamic"}),
            "eagle chain of 4": ("eagle", {"tree": "chain", "gamma": 4, "schedule": "constant"})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for method, params in SETTINGS.values():  # warm-up: first calls pay for lazy initialisation
        run_ours(engine.Request(prompt=EXAMPLES[0], method=method, params=params, max_new_tokens=8))
    for example in EXAMPLES:
        seconds, outputs = {k: [] for k in SETTINGS}, {}
        for r in range(args.repeats):
            order = list(SETTINGS.items())
            for name, (method, params) in order if r % 2 == 0 else order[::-1]:
                ids, s, _, _ = run_ours(engine.Request(prompt=example, method=method, params=params,
                                                       max_new_tokens=128))
                seconds[name].append(s)
                outputs[name] = ids
        base = min(seconds["autoregressive"])
        print(repr(example.splitlines()[0]), {name: f"{base / min(t):.2f}x" + ("" if outputs[name] ==
                                                                              outputs["autoregressive"] else " DIFFERS")
                                              for name, t in seconds.items() if name != "autoregressive"})


if __name__ == "__main__":
    main()
