"""Does torch.compile pay on the lean runtime? One-token forwards of tiny-code after 96 tokens, plain against each
lean block compiled (`torch.compile(block.forward, dynamic=True)`: the cache length changes every token), and the time
compiling and the first calls take.

    python scripts/lean_compile.py [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: run as `python scripts/...`

from playground.models import loading as models  # noqa: E402
from playground.runtime.lean import LeanLM, lean_model  # noqa: E402

PROMPT = list(range(16, 112))


def ms_per_token(lm: LeanLM, tokens: int = 200) -> float:
    lm.forward(PROMPT)
    base = lm.length
    for _ in range(20):  # warm-up
        lm.forward([7])
        lm.crop(base)
    start = time.perf_counter()
    for i in range(tokens):
        lm.forward([7 + i % 50])
    return 1000 * (time.perf_counter() - start) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    model = models.load(models.DEFAULT_MODEL).model
    plain = ms_per_token(LeanLM(model))
    start = time.perf_counter()
    for block in lean_model(model).blocks:
        block.forward = torch.compile(block.forward, dynamic=True)
    first = LeanLM(model)
    first.forward(PROMPT)
    first.forward([7])
    first.forward([8, 9])
    compiled_s = time.perf_counter() - start
    print(f"plain {plain:.2f} ms/token; compiled {ms_per_token(LeanLM(model)):.2f} ms/token after "
          f"{compiled_s:.1f} s compiling and the first calls")


if __name__ == "__main__":
    main()
