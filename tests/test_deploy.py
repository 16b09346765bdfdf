"""Deployment (issue 25): the Space's README front matter, ZeroGPU's decorator (a no-op off a Space), and the
Dockerfile, checked without building it (no container tool runs on this project's machines)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import gradio
import pytest
import yaml

from playground import hosted
from playground.app import build, gpu
from playground.models import loading as models

ROOT = Path(__file__).resolve().parent.parent
SPACE_COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "a Space reads its configuration from YAML at the very top of README.md"
    block, rest = text[4:].split("\n---\n", 1)
    assert rest.lstrip().startswith("# Decoding Playground")  # the README itself follows
    return yaml.safe_load(block)


def test_readme_front_matter_configures_a_gradio_space_with_the_installed_gradio():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert str(meta["python_version"]) == f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"
    assert (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert meta["colorFrom"] in SPACE_COLOURS and meta["colorTo"] in SPACE_COLOURS
    assert meta["title"] and meta["emoji"] and meta["license"]
    assert 0 < len(meta["short_description"]) <= 60  # the Hub refuses a longer one


def test_the_gradio_the_lock_pins_is_the_spaces_sdk_version():
    pinned = re.search(r"^gradio==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE).group(1)
    assert pinned == front_matter()["sdk_version"]


# ------------------------------------------------------------------ ZeroGPU


def fake_spaces(calls: list) -> types.ModuleType:
    """A stand-in for the `spaces` package: GPU(duration=...) records the duration and marks the function."""
    module = types.ModuleType("spaces")

    def GPU(duration=60):  # noqa: N802 (the package's own name)
        def decorate(fn):
            calls.append(duration)

            def wrapper(*args, **kwargs):
                return ("on the GPU", fn(*args, **kwargs))
            return wrapper
        return decorate

    module.GPU = GPU
    return module


def double(x):
    return 2 * x


def test_gpu_is_the_identity_without_spaces_or_off_a_space(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    monkeypatch.delenv(hosted.SPACE_ENV, raising=False)
    assert gpu.gpu(double) is double and gpu.zero_gpu() is None  # spaces importable, but not on a Space
    monkeypatch.setenv(hosted.SPACE_ENV, "someone/decoding-playground")
    monkeypatch.setitem(sys.modules, "spaces", None)  # on a Space without the package: import fails
    assert gpu.gpu(double) is double and gpu.zero_gpu() is None
    assert calls == []


def test_gpu_applies_spaces_gpu_with_the_hosted_bound_on_a_space(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    monkeypatch.setenv(hosted.SPACE_ENV, "someone/decoding-playground")
    assert gpu.gpu(double)(4) == ("on the GPU", 8)
    assert calls == [hosted.BOUND_S]


def test_zero_gpu_puts_models_on_cuda_and_loads_them_at_start_only_on_zero_gpu(monkeypatch):
    done = []
    monkeypatch.setattr(models, "use_device", lambda name: done.append(("device", name)))
    monkeypatch.setattr(models, "load", lambda name: done.append(("load", name)))
    monkeypatch.delenv(models.DEVICE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces([]))
    monkeypatch.delenv(hosted.SPACE_ENV, raising=False)
    assert not gpu.use_zero_gpu(None, ["tiny-code"]) and done == []  # CPU hardware, a laptop: nothing changes
    monkeypatch.setenv(hosted.SPACE_ENV, "someone/decoding-playground")
    assert not gpu.use_zero_gpu("cpu", ["tiny-code"]) and done == []  # a device asked for wins
    assert gpu.use_zero_gpu(None, ["tiny-code", "tiny-code-draft"])
    assert done == [("device", "cuda"), ("load", "tiny-code"), ("load", "tiny-code-draft")]


# ------------------------------------------------------------------ the Dockerfile


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, args = line.strip().partition(" ")
            found.append((keyword.upper(), args.strip()))
    return found


def env_of(steps) -> dict[str, str]:
    env = {}
    for keyword, args in steps:
        if keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def test_dockerfile_base_lock_user_port_and_command():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "-r requirements.lock" in runs and "requirements.txt" not in runs  # pinned, hashed versions
    env = env_of(steps)
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0"
    exposed = [args for keyword, args in steps if keyword == "EXPOSE"]
    assert exposed == [env["GRADIO_SERVER_PORT"]]
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert steps[-1] == ("CMD", '["python", "app.py"]')


def test_the_app_listens_where_the_dockerfile_says(monkeypatch):
    env = env_of(instructions())
    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.setenv(name, env[name])
    args = build.arguments([])
    assert (args.host, str(args.port)) == ("0.0.0.0", env["GRADIO_SERVER_PORT"])


def test_dockerfile_copies_files_that_exist_and_what_the_app_needs():
    copied = []
    for keyword, args in instructions():
        if keyword == "COPY":
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            copied += words[:-1]
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    assert {"requirements.lock", "app.py", "playground", "static", "assets"} <= set(copied)


def test_dockerignore_keeps_local_and_large_files_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".cache", "checkpoints", "*.db"} <= ignored
    assert not ignored & {"app.py", "playground", "static", "assets", "requirements.lock"}


@pytest.mark.parametrize("name", ["app.py", "playground", "static", "assets"])
def test_what_the_dockerfile_copies_is_tracked_by_git(name):
    """A file only on this machine (ignored by git) would be missing from a fresh clone's build."""
    tracked = subprocess.run(["git", "ls-files", name], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip(), f"{name} is not tracked"
