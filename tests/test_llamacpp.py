"""The llama.cpp peers (issue 22): the GGUF converter gives llama.cpp the logits transformers computes, the peers'
greedy output is ours, and without llama-cpp-python the bench refuses in one line that says how to install it."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import torch
from conftest import PROMPTS, ROOT, one_error_line

SHIPPED_PROMPTS = ("def fibonacci(n):\n    if n < 2:", "import os\n\n\nclass Config:\n    def __init__(self, path):\n")


@pytest.fixture(scope="module", autouse=True)
def gguf_cache(tmp_path_factory):
    """Converted files go to a temporary cache, not the user's (subprocesses inherit it)."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


def need_llama_cpp():
    pytest.importorskip("gguf", reason="the gguf package is not installed (pip install -r requirements-peers.txt)")
    return pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed "
                                                   "(pip install -r requirements-peers.txt)")


def test_without_llama_cpp_the_bench_refuses_in_one_line(llama_pair, run_cli, tmp_path):
    hidden = tmp_path / "hide" / "llama_cpp"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": PROMPTS[0]}) + "\n")
    out = run_cli("bench", "--model", llama_pair.target, "--methods", "autoregressive,llamacpp_greedy",
                  "--prompts", prompts, env={"PYTHONPATH": f"{hidden.parent}{os.pathsep}{ROOT}"})
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert "llama-cpp-python" in line and "pip install -r requirements-peers.txt" in line


def llama_logits(llm, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)])


@pytest.mark.parametrize("which", ["random", "shipped"])
def test_gguf_logits_match_transformers(which, llama_pair, request):
    """Every position's logits: a random Llama with an untied head and grouped KV heads (4 query heads, 2 KV heads),
    and the shipped tiny-code (tied head)."""
    need_llama_cpp()
    from playground.bench.llamacpp import new_llama
    from playground.models import loading

    name, prompts = ((llama_pair.target, PROMPTS) if which == "random"
                     else (request.getfixturevalue("shipped_pair").target, SHIPPED_PROMPTS))
    loaded = loading.load(name)
    llm = new_llama(loaded, threads=1, logits_all=True)
    for prompt in prompts:
        ids = loaded.tokenizer(prompt)["input_ids"]
        with torch.inference_mode():
            ours = loaded.model(torch.tensor([ids])).logits[0].numpy()
        theirs = llama_logits(llm, ids)
        assert np.abs(theirs - ours).max() < 1e-3 * max(1.0, np.abs(ours).max()), prompt
        assert (theirs.argmax(-1) == ours.argmax(-1)).all()


def test_gguf_is_cached_and_rebuilt_when_the_weights_change(llama_pair):
    need_llama_cpp()
    from playground.bench.gguf_convert import cache_dir, gguf_path
    from playground.models import loading

    loaded = loading.load(llama_pair.target)
    path = gguf_path(loaded)
    assert path.parent == cache_dir() and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert gguf_path(loaded) == path and path.stat().st_mtime_ns == stamp  # not written again
    changed = loading.LoadedModel(name=loaded.name, model=copy.deepcopy(loaded.model), tokenizer=loaded.tokenizer)
    with torch.no_grad():
        changed.model.model.norm.weight[0] += 0.5
    other = gguf_path(changed)
    assert other != path and other.is_file() and path.is_file()


def test_a_non_llama_model_is_refused(gpt2_pair):
    need_llama_cpp()
    from playground.bench.gguf_convert import gguf_path
    from playground.errors import PlaygroundError
    from playground.models import loading

    with pytest.raises(PlaygroundError, match="plain Llama models only"):
        gguf_path(loading.load(gpt2_pair.target))


def test_llamacpp_greedy_continues_as_autoregressive_for_64_tokens(shipped_pair, run_engine):
    need_llama_cpp()
    from playground.bench import llamacpp
    from playground.models import loading

    target, draft = loading.load(shipped_pair.target), loading.load(shipped_pair.draft)
    for prompt in SHIPPED_PROMPTS:
        *_, ours = run_engine(prompt=prompt, model=shipped_pair.target, method="autoregressive", max_new_tokens=64)
        for peer in llamacpp.PEERS:
            ids, seconds, forwards = llamacpp.run(peer, target, draft, prompt, 64)
            assert ids == ours.token_ids, peer
            assert seconds > 0
            assert (forwards == len(ids)) if peer == "llamacpp_greedy" else 0 < forwards <= len(ids)


def test_bench_rows_of_the_llamacpp_peers(llama_pair, run_cli, tmp_path):
    """On a random Llama with GQA and an untied head: same tokens as our autoregressive, forwards counted."""
    need_llama_cpp()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:2]))
    peers = "llamacpp_greedy,llamacpp_speculative,llamacpp_prompt_lookup"
    out = run_cli("bench", "--model", llama_pair.target, "--draft", llama_pair.draft, "--methods",
                  f"autoregressive,{peers}", "--prompts", prompts, "--max-new-tokens", 24, "--threads", 1, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["methods"]
    for name in peers.split(","):
        assert rows[name]["identical_to_baseline"] is True, name
        assert rows[name]["tokens_per_s"] > 0
    assert rows["llamacpp_greedy"]["mean_accepted"] == 1.0
    assert rows["llamacpp_speculative"]["mean_accepted"] > 1.0
