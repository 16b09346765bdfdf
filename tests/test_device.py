"""Where models run: `--device` / $PLAYGROUND_DEVICE.

On a machine with a GPU the last test runs every method there and checks each lossless one against autoregressive
decoding there; elsewhere it is skipped (CI has no GPU), and the others check the errors."""

from __future__ import annotations

import pytest
import torch
from conftest import shipped_available

from playground import cli
from playground.errors import PlaygroundError
from playground.methods import METHODS
from playground.models import loading as models


@pytest.mark.parametrize("name, message", [("banana", "unknown device 'banana'"),
                                           ("cuda:64", "device 'cuda:64' is not available on this machine")])
def test_a_device_this_machine_lacks_is_refused(name, message, capfd):
    with pytest.raises(PlaygroundError, match=message):
        models.check_device(name)
    status = cli.main(["generate", "--device", name, "--prompt", "x = 1"])
    assert status == 2 and message in capfd.readouterr().err


def test_cpu_is_the_default_and_models_say_where_they_are(monkeypatch):
    monkeypatch.delenv(models.DEVICE_ENV, raising=False)
    assert models.device() == torch.device("cpu")
    if shipped_available():
        assert models.load(models.DEFAULT_DRAFT).device == torch.device("cpu")


def _runs(device: str, monkeypatch, run_engine) -> dict[str, list[int]]:
    """Greedy token ids of every method at its defaults on the shipped models (numbers methods on theirs)."""
    monkeypatch.setenv(models.DEVICE_ENV, device)
    prompt, numbers = "def parse(line):\n    ", "deux cent quarante-trois"
    on = {"dag": dict(model="tiny-numbers-dat", prompt=numbers), "gad": dict(model="tiny-numbers-ar", prompt=numbers),
          "diffusion": dict(model="tiny-code-diffusion", prompt=prompt,
                            params={"strategy": "freedave", "cache": "dual"})}
    out = {}
    for name in METHODS:
        fields = on.get(name, dict(model=models.DEFAULT_MODEL, prompt=prompt))
        _, _, finished = run_engine(method=name, max_new_tokens=32, **fields)
        assert finished.status == "finished", (device, name, finished.error)
        out[name] = finished.token_ids
    for model, prompt_ in (("tiny-numbers-ar", numbers), ("tiny-code-diffusion", prompt)):
        params = {"strategy": "fixed_steps", "cache": "dual"} if model == "tiny-code-diffusion" else {}
        method = "diffusion" if params else "autoregressive"
        out[f"baseline@{model}"] = run_engine(method=method, model=model, prompt=prompt_, max_new_tokens=32,
                                              params=params)[2].token_ids
    return out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.skipif(not shipped_available(), reason="shipped models missing")
def test_every_method_runs_on_the_gpu_and_lossless_ones_match(monkeypatch, run_engine):
    """Lossless is a promise within a device: a GPU's float arithmetic differs from the CPU's in the last bits."""
    gpu = _runs("cuda", monkeypatch, run_engine)
    assert models.load(models.DEFAULT_MODEL).device.type == "cuda"
    for name, method in METHODS.items():
        if name == "gad":
            assert gpu[name] == gpu["baseline@tiny-numbers-ar"], name
        elif name == "diffusion":  # freedave: one token per forward's output, same cache
            assert gpu[name] == gpu["baseline@tiny-code-diffusion"], name
        elif method.lossless:
            assert gpu[name] == gpu["autoregressive"], name
        else:
            assert gpu[name], name
