"""ZeroGPU: on a Hugging Face Space with ZeroGPU hardware a GPU is attached to the process only while a function
decorated with the `spaces` package's `@spaces.GPU` runs, so the handlers that decode (each tab's run) are wrapped in
`gpu()`. Anywhere else (no `spaces` package, or not on a Space, as on CPU hardware, a laptop or the tests) `gpu()` is
the identity and nothing changes. `spaces` is never a dependency: ZeroGPU Spaces install it themselves.
"""

from __future__ import annotations

import importlib
import os

from playground import hosted
from playground.models import loading as models

# How long one decorated call may hold the GPU: the longest one request may hold the machine in hosted mode (which
# is on by default on a Space), so ZeroGPU never cuts a request that hosted mode allows.
DURATION_S = hosted.BOUND_S


def zero_gpu():
    """The `spaces` module when this process runs on a Space and can import it, else None."""
    if not os.environ.get(hosted.SPACE_ENV, "").strip():
        return None
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


def gpu(fn):
    """`fn` as ZeroGPU runs it (`spaces.GPU(duration=DURATION_S)(fn)`, generators included) on a Space with the
    `spaces` package, else `fn` itself."""
    spaces = zero_gpu()
    return fn if spaces is None else spaces.GPU(duration=DURATION_S)(fn)


def use_zero_gpu(asked: str | None, preload: list[str]) -> bool:
    """On ZeroGPU, unless a device was `asked` for (--device, $PLAYGROUND_DEVICE): models on cuda, and the `preload`
    ones loaded now. ZeroGPU wants weights moved to cuda in the main process at start (it defers the move until a
    decorated call has a GPU); a model first loaded inside a call would be loaded again by every call. Returns
    whether it did; elsewhere nothing changes."""
    if zero_gpu() is None or asked or os.environ.get(models.DEVICE_ENV):
        return False
    models.use_device("cuda")
    for name in preload:
        models.load(name)
    return True
