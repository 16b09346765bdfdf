"""The lean runtime (runtime/lean.py) against transformers (runtime/lm.py), which stays the reference.

LeanLM re-implements the decoder of Llama-family models in plain torch on a static cache, so everything a method reads
from it is compared with CachedLM on the same weights: logits of a prefill, decode steps and a rollback; a draft tree's
logits, the kept path and the tapped features; sub-layer skipping against transformers' Gates. Over the shipped
tiny-code and random Llama (GQA), Qwen2 (biases on q/k/v, rope theta 1e6), Mistral without a window (a head_dim that
is not hidden / heads) and Mistral with a window longer than the context (one KV head, tied embeddings), whose biases
and norm weights are made nonzero and not one, so that a dropped one shows.
Then lean autoregressive against transformers' own `generate` (ties at the first difference detected and recorded,
any other difference fails), the choice of runtime (`engine.pick_runtime`), and exact sampling on lean.
The methods on lean, token for token, are in test_lean_methods.py.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import torch
from conftest import CONTEXT, PROMPTS, VOCAB, _arch_pair
from test_draft_free import REPEAT
from test_sampling import _counts, _first_tokens, assert_fits, assert_rejected, first_token_dists  # noqa: F401

from playground.engine import Request, pick_runtime, prepare
from playground.errors import PlaygroundError
from playground.models import loading as models
from playground.runtime import lean
from playground.runtime.lean import LeanLM
from playground.runtime.lm import CachedLM
from playground.runtime.tree_attention import forward_tree, keep_path

REL = 1e-4  # the largest difference allowed between the runtimes' logits, relative to their magnitude
TIE = 1e-4  # top-two logits closer than this: either runtime may pick either token
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
              max_position_embeddings=CONTEXT, vocab_size=VOCAB, initializer_range=0.2)


def random_configs() -> dict:
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    return {
        "llama-gqa": LlamaConfig(num_key_value_heads=2, **COMMON),
        "qwen2-bias": Qwen2Config(num_key_value_heads=2, rope_theta=1e6, **COMMON),
        "mistral": MistralConfig(num_key_value_heads=4, sliding_window=None, head_dim=32, **COMMON),  # 4 x 32 != 64
        "mistral-window": MistralConfig(num_key_value_heads=1, sliding_window=4 * CONTEXT, tie_word_embeddings=True,
                                        **COMMON),
    }


@torch.no_grad()
def random_model(config, seed: int = 0):
    """A random model whose biases and norm weights (zeros and ones at init) are perturbed."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    for name, weight in model.named_parameters():
        if "norm" in name or name.endswith("bias"):
            weight.add_(0.2 * torch.randn(weight.shape))
    return model


MODELS = (*random_configs(), "tiny-code")


@pytest.fixture(scope="module", params=MODELS)
def hf_model(request):
    """Each model in turn, as transformers loaded or built it (checked to be what its name says)."""
    if request.param == "tiny-code":
        request.getfixturevalue("shipped_pair")  # skipped while the shipped models are missing
        return models.load("tiny-code").model
    model = random_model(random_configs()[request.param])
    if request.param == "llama-gqa":
        assert model.config.num_key_value_heads < model.config.num_attention_heads
    if request.param == "qwen2-bias":
        assert float(model.model.layers[0].self_attn.k_proj.bias.detach().abs().max()) > 0
    assert lean.supports(model) is None
    return model


def assert_same_logits(mine: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    """Lean's logits within REL of transformers', relative to their largest magnitude (at least 1)."""
    assert mine.shape == ref.shape, what
    scale, err = float(ref.abs().max()), float((mine - ref).abs().max())
    assert err <= REL * max(scale, 1.0), f"{what}: lean and transformers differ by {err:.2e} (scale {scale:.1f})"


def random_ids(n: int, seed: int = 0) -> list[int]:
    return torch.randint(2, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def test_prefill_decode_and_rollback_logits_match_transformers(hf_model):
    """A prefill, single-token and multi-token decode steps, then a rollback (crop) and new tokens: the same logits
    on both runtimes, row for row, and the same cache length."""
    ids = random_ids(20)
    mine, ref = LeanLM(hf_model), CachedLM(hf_model)
    for what, chunk in [("prefill", ids[:9]), ("decode", ids[9:10]), ("decode", ids[10:11]), ("3 tokens", ids[11:14]),
                        ("decode", ids[14:15])]:
        assert_same_logits(mine.forward(chunk, keep=len(chunk)), ref.forward(chunk, keep=len(chunk)), what)
        assert mine.length == ref.length
    for lm in (mine, ref):
        lm.crop(11)
    assert mine.length == ref.length == 11
    assert_same_logits(mine.forward(ids[15:20], keep=5), ref.forward(ids[15:20], keep=5), "after a rollback")


def test_lean_lm_is_a_drop_in_for_cached_lm():
    """Every public method and attribute of CachedLM but its transformers caches exists on LeanLM, a method with the
    same parameters (CachedLM.forward's **model_kwargs, transformers' own, aside): methods take either."""
    model = random_model(random_configs()["llama-gqa"])
    mine, ref = LeanLM(model), CachedLM(model)
    for name in (n for n in dir(ref) if not n.startswith("_") and n not in ("cache", "self_cache")):
        assert hasattr(mine, name), f"LeanLM lacks CachedLM.{name}"
        theirs = getattr(CachedLM, name, None)
        if callable(theirs):
            wanted = [p for p, v in inspect.signature(theirs).parameters.items() if v.kind != v.VAR_KEYWORD]
            assert list(inspect.signature(getattr(LeanLM, name)).parameters) == wanted, name


PARENTS = [-1, -1, 0, 0, 1, 2]  # root -> 0, 1; 0 -> 2, 3; 1 -> 4; 2 -> 5


def test_tree_forward_kept_path_and_features_match_transformers(hf_model):
    """forward_tree gives the same rows on both runtimes, a deep node's row is a plain forward along its path, and
    after keep_path (a path that is not the first nodes, so rows move) the cache and the tapped features are those of
    the committed tokens followed by the path, on both."""
    prefix, nodes, nxt = random_ids(10, seed=1), random_ids(6, seed=2), random_ids(1, seed=3)
    mine, ref = LeanLM(hf_model), CachedLM(hf_model)
    rows = []
    for lm in (mine, ref):
        lm.tap = True
        lm.forward(prefix[:-1])
        rows.append(forward_tree(lm, prefix[-1:], nodes, PARENTS))  # row 0: the root, 1 + i: node i
    assert_same_logits(rows[0], rows[1], "tree rows")
    along = CachedLM(hf_model).forward(prefix + [nodes[0], nodes[2], nodes[5]])[0]
    assert_same_logits(rows[0][1 + 5], along, "node 5 against a forward along its path")
    path = [1, 4]
    fresh = CachedLM(hf_model)
    fresh.tap = True
    want = fresh.forward(prefix + [nodes[1], nodes[4]] + nxt)
    for lm in (mine, ref):
        keep_path(lm, len(prefix), path)
        assert lm.length == len(prefix) + len(path)
        assert_same_logits(lm.forward(nxt), want, f"{type(lm).__name__} after keep_path")
        assert_same_logits(lm.features[:lm.length], fresh.features[:lm.length], f"{type(lm).__name__} features")


SKIP = [(0, "mlp"), (1, "attn"), (2, "attn"), (2, "mlp")]  # an MLP alone, an attention alone, a whole layer


def test_skipping_matches_transformers_gates(hf_model):
    """Drafting with sub-layers off (lean: flags per block; transformers: Gates) gives the same logits; after the
    rollback the full model gives the same logits again, and they differ from the skipped ones."""
    ids = random_ids(12, seed=4)
    mine, ref = LeanLM(hf_model), CachedLM(hf_model)
    (skipped, full), (ref_skipped, ref_full) = (skip_then_full(lm, ids, SKIP) for lm in (mine, ref))
    assert_same_logits(skipped, ref_skipped, "skipping")
    assert_same_logits(full, ref_full, "full model after skipping")
    assert not torch.allclose(skipped, full), "the skip set changed nothing"
    assert mine.skip == frozenset()


def skip_then_full(lm, ids: list[int], skip) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ids[8:] drafted with `skip` off on a view of lm's cache (as self_speculative drafts), then, after
    rolling back, of the same tokens through the full model."""
    lm.forward(ids[:8])
    drafter = lm.share()
    with drafter.skipping(skip):
        skipped = drafter.forward(ids[8:], keep=len(ids) - 8)
    lm.crop(8)
    return skipped, lm.forward(ids[8:], keep=len(ids) - 8)


# ------------------------------------------------------------ against transformers' own generate

GEN_PROMPTS = (*PROMPTS, REPEAT, "class Stack:\n    def push(self, item):\n", "import sys\n\n\ndef main(")
GEN_NEW = 64


def first_difference(ours: list[int], theirs: list[int]) -> int | None:
    """The first position where the two outputs differ (a missing token counts), None when they are equal."""
    if ours == theirs:
        return None
    return next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))


def same_or_tie(ours: list[int], theirs: list[int], logits: list[torch.Tensor]) -> tuple[int, float] | None:
    """None when identical. When not, the reference's top two logits at the first difference must be within TIE
    (a tie that float rounding may break either way): returns (position, margin); any other difference fails."""
    i = first_difference(ours, theirs)
    if i is None:
        return None
    assert i < len(logits), f"the outputs differ at {i}, past the reference's {len(logits)} tokens"
    top = logits[i].float().flatten().topk(2).values
    margin = float(top[0] - top[1])
    assert margin < TIE, (f"lean differs from transformers at token {i} ({ours[i:i + 1]} vs {theirs[i:i + 1]}), "
                          f"where the reference's top two logits are {margin:.2e} apart: not a tie")
    return i, margin


def test_same_or_tie_tells_ties_from_differences():
    """The check itself: identical passes, a difference at a near-tie is returned, any other one fails."""
    logits = [torch.tensor([[0.0, 5.0, 1.0]]), torch.tensor([[2.0, 2.0 + 1e-6, 0.0]]), torch.tensor([[9.0, 0, 0]])]
    assert same_or_tie([1, 1, 0], [1, 1, 0], logits) is None
    position, margin = same_or_tie([1, 0, 0], [1, 1, 0], logits)
    assert position == 1 and margin < TIE
    with pytest.raises(AssertionError, match="not a tie"):
        same_or_tie([2, 1, 0], [1, 1, 0], logits)
    with pytest.raises(AssertionError, match="not a tie"):
        same_or_tie([1, 1, 0, 5], [1, 1, 0], logits + [torch.tensor([[0.0, 3.0, 0.0]])])


def test_lean_autoregressive_equals_transformers_generate(shipped_pair, run_engine, record_property):
    """tiny-code, 64 tokens from each of several prompts: lean greedy equals `model.generate`'s. A first difference
    at a tie of the reference's top two logits is reported (printed and recorded as the property `ties`)."""
    from transformers import GenerationConfig

    loaded = models.load(shipped_pair.target)
    tok = loaded.tokenizer
    cfg = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=GEN_NEW, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.pad_token_id, output_logits=True, return_dict_in_generate=True)
    ties = []
    for prompt in GEN_PROMPTS:
        x = torch.tensor([tok(prompt)["input_ids"]])
        with torch.inference_mode():
            out = loaded.model.generate(x, attention_mask=torch.ones_like(x), generation_config=cfg)
        theirs = out.sequences[0, x.shape[1]:].tolist()
        started, _, finished = run_engine(prompt=prompt, model=shipped_pair.target, max_new_tokens=GEN_NEW,
                                          runtime="lean")
        assert started.settings["runtime"] == "lean"
        tie = same_or_tie(finished.token_ids, theirs, list(out.logits))
        if tie:
            ties.append({"prompt": prompt, "position": tie[0], "margin": tie[1]})
            print(f"TIE: lean and transformers part at token {tie[0]} of {prompt!r}, top-two margin {tie[1]:.2e}")
    record_property("ties", ties)


# ------------------------------------------------------------ choosing the runtime


@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_lean_on_gpt2_or_neox_is_one_line(model_root, arch):
    pair = _arch_pair(arch, model_root)
    with pytest.raises(PlaygroundError) as refused:
        prepare(Request(prompt="x = 1", model=pair.target, runtime="lean"))
    line = str(refused.value)
    assert "\n" not in line and "lean runtime" in line and "Llama, Qwen2, Mistral" in line, line


def test_an_unknown_runtime_is_one_line(llama_pair):
    with pytest.raises(PlaygroundError) as refused:
        prepare(Request(prompt="x = 1", model=llama_pair.target, runtime="fast"))
    assert str(refused.value) == "unknown runtime 'fast' (available: auto, lean, transformers)"


@pytest.mark.parametrize("target,draft,asked,picked", [
    ("llama", None, "auto", "lean"), ("qwen2", None, "auto", "lean"), ("gpt2", None, "auto", "transformers"),
    ("neox", None, "auto", "transformers"), ("llama", None, "transformers", "transformers"),
    ("llama", "llama", "lean", "lean"), ("llama", "gpt2", "auto", "transformers"),  # a draft lean cannot run
])
def test_the_runtime_picked_is_recorded(model_root, run_engine, target, draft, asked, picked):
    """auto: lean for Llama-family models (targets and drafts), transformers as soon as one is not; RunStarted's
    settings say which ran."""
    t = _arch_pair(target, model_root)
    extra = {"method": "speculative", "draft": _arch_pair(draft, model_root).draft} if draft else {}
    started, _, finished = run_engine(prompt="x = 1", model=t.target, max_new_tokens=3, runtime=asked, **extra)
    assert finished.status == "finished", finished.error
    assert started.settings["runtime"] == picked


def test_auto_picks_lean_for_tiny_code(shipped_pair, run_engine):
    started, _, _ = run_engine(prompt="x = 1", model=shipped_pair.target, max_new_tokens=2)
    assert started.settings["runtime"] == "lean"


def unsupported_llamas() -> dict:
    from transformers import LlamaConfig, MistralConfig

    return {"attention_bias": (LlamaConfig(attention_bias=True, **COMMON), "output projection"),
            "window": (MistralConfig(sliding_window=CONTEXT // 4, **COMMON), "sliding-window"),
            "rope": (LlamaConfig(rope_scaling={"rope_type": "linear", "factor": 2.0}, **COMMON), "rope scaling")}


@pytest.mark.parametrize("kind", list(unsupported_llamas()))
def test_llama_family_models_lean_cannot_run_fall_back(kind):
    """A Llama-family model with what the lean blocks lack (an output-projection bias, a sliding window shorter than
    the context, scaled rope) is not run wrongly: auto picks transformers, asking for lean is one line."""
    config, words = unsupported_llamas()[kind]
    loaded = SimpleNamespace(name=kind, kind="causal", model=random_model(config))
    assert words in lean.supports(loaded.model)
    assert pick_runtime("auto", loaded) == "transformers"
    with pytest.raises(PlaygroundError, match=words) as refused:
        pick_runtime("lean", loaded)
    assert "\n" not in str(refused.value)


# ------------------------------------------------------------ sampling


def test_lean_speculative_sampling_follows_the_target(llama_pair, run_engine, first_token_dists):
    """Sampled speculative decoding on lean: the first generated token is distributed as the target's p (computed
    by transformers), not as the draft's q (chi-square, as in test_sampling.py)."""
    prompt, p, q = first_token_dists
    started, _, _ = run_engine(prompt=prompt, model=llama_pair.target, draft=llama_pair.draft, method="speculative",
                               max_new_tokens=2, temperature=1.0, runtime="lean")
    assert started.settings["runtime"] == "lean"
    tokens = _first_tokens(run_engine, llama_pair, prompt, "speculative", draft=llama_pair.draft,
                           params={"gamma": 2}, runtime="lean")
    counts = _counts(tokens, p)
    assert_fits(counts, p, "speculative on lean, first generated token")
    assert_rejected(counts, q)
