"""The lean runtime for masked LMs (runtime/lean_masked.py) against transformers' EuroBertForMaskedLM, the reference:
the same logits bit for bit (full canvas, a prefix cache, a batch of canvases on one cache, a block model's mask), the
same diffusion output on both runtimes, and which runtime a diffusion run gets."""

from __future__ import annotations

import pytest
import torch
from conftest import PROMPTS
from test_block import _block_model
from test_diffusion import SHIPPED, _mlm
from transformers import DynamicCache

from playground.engine import Request, pick_runtime, prepare
from playground.errors import PlaygroundError
from playground.events import output_ids
from playground.models import loading
from playground.runtime import lean_masked
from playground.runtime.canvas import additive


def _model(name: str):
    """A random EuroBERT with grouped keys and values, a random block model, or the shipped diffusion model."""
    from transformers import EuroBertConfig, EuroBertForMaskedLM
    if name == "random-block":
        return _block_model()
    if name == SHIPPED:
        if not (loading.MODELS_DIR / SHIPPED / "config.json").exists():
            pytest.skip(f"{SHIPPED} is not in assets/models")
        return loading.load(SHIPPED).model
    torch.manual_seed(1)
    return EuroBertForMaskedLM(EuroBertConfig(
        vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, max_position_embeddings=128, initializer_range=0.2, pad_token_id=1, bos_token_id=0,
        eos_token_id=0, mask_token_id=2)).eval()


@pytest.fixture(scope="module", params=["random-gqa", "random-block", SHIPPED])
def pair(request):
    model = _model(request.param)
    return model, lean_masked.lean_masked(model)


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.equal(a, b), f"largest difference {(a - b).abs().max().item()}"


@torch.inference_mode()
def test_a_whole_canvas_reads_the_same(pair):
    hf, lean = pair
    ids = torch.randint(3, 500, (2, 24))
    ids[:, 16:] = 2  # masks at the end
    _same(hf(input_ids=ids).logits, lean(input_ids=ids).logits)


@torch.inference_mode()
def test_a_prefix_cache_and_a_batch_on_it_read_the_same(pair):
    """Fast-dLLM's prefix cache as the Denoiser makes it: one canvas's keys and values, expanded for a batch."""
    hf, lean = pair
    ids = torch.randint(3, 500, (1, 30))
    caches = []
    for model in (hf, lean):
        cache = DynamicCache()
        model(input_ids=ids[:, :20], cache=cache)
        caches.append([(layer.keys, layer.values) for layer in cache.layers])
    for (k1, v1), (k2, v2) in zip(*caches):
        _same(k1, k2)
        _same(v1, v2)
    batch = ids[:, 20:].repeat(3, 1)
    batch[1:, 4:] = 2
    positions = torch.arange(20, 30).expand(3, -1)
    outs = []
    for model, kv in zip((hf, lean), caches):
        cache = DynamicCache()
        for i, (k, v) in enumerate(kv):
            cache.update(k.expand(3, -1, -1, -1), v.expand(3, -1, -1, -1), i)
        outs.append(model(input_ids=batch, position_ids=positions, cache=cache).logits)
    _same(*outs)


@torch.inference_mode()
def test_a_block_mask_reads_the_same(pair):
    """Causal before a block, both ways inside it (the block model's first forward of a block)."""
    hf, lean = pair
    allowed = torch.ones(16, 16, dtype=torch.bool).tril_()
    allowed[8:, 8:] = True
    mask = additive(allowed, torch.float32)
    ids = torch.randint(3, 500, (1, 16))
    _same(hf(input_ids=ids, attention_mask=mask).logits, lean(input_ids=ids, attention_mask=mask).logits)


@pytest.mark.parametrize("strategy", ["threshold", "freedave"])
def test_diffusion_decodes_the_same_on_both_runtimes(run_engine, model_root, strategy):
    folder = _mlm("eurobert", model_root)
    outs = []
    for runtime in ("lean", "transformers"):
        started, steps, finished = run_engine(prompt=PROMPTS[0], model=folder, method="diffusion", max_new_tokens=24,
                                              stop_at_eos=False, runtime=runtime,
                                              params={"block": 8, "strategy": strategy, "cache": "prefix"})
        assert finished.status == "finished", finished.error
        assert started.settings["runtime"] == runtime
        outs.append((output_ids(steps), [s.target_forwards for s in steps]))
    assert outs[0] == outs[1]


def test_the_runtime_a_diffusion_run_gets(model_root):
    """auto: lean for EuroBERT, transformers for the masked LMs lean cannot run (asking lean for one: one line); a
    masked draft lean cannot run is read through transformers beside a lean target."""
    euro = loading.load(_mlm("eurobert", model_root))
    bert = loading.load(_mlm("bert", model_root))
    assert pick_runtime("auto", euro) == "lean"
    assert pick_runtime("auto", bert) == "transformers"
    with pytest.raises(PlaygroundError, match="EuroBERT") as refused:
        pick_runtime("lean", bert)
    assert "\n" not in str(refused.value)
    target = loading.load("tiny-code")
    assert pick_runtime("auto", target, bert) == "lean"
    assert prepare(Request(prompt="x = 1", model=_mlm("eurobert", model_root), method="diffusion")).runtime == "lean"


@torch.inference_mode()
def test_a_static_cache_reads_the_same_as_a_dynamic_one(pair):
    """StaticKV (the drafter's preallocated cache): a prefix kept, the rows after it overwritten by the next forward,
    the logits those of a DynamicCache holding the same prefix."""
    _, lean = pair
    ids = torch.randint(3, 500, (1, 30))
    static = lean_masked.StaticKV(lean.net)
    lean(input_ids=ids[:, :20], cache=static)
    static.length = 20
    lean(input_ids=torch.full((1, 6), 2), position_ids=torch.arange(20, 26)[None], cache=static)  # rows dropped
    static.length = 20
    dynamic = DynamicCache()
    lean(input_ids=ids[:, :20], cache=dynamic)
    positions = torch.arange(20, 30)[None]
    _same(lean(input_ids=ids[:, 20:], position_ids=positions, cache=static).logits,
          lean(input_ids=ids[:, 20:], position_ids=positions, cache=dynamic).logits)
