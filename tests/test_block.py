"""Block diffusion (training/block.py, the Denoiser's block mode): attention causal across blocks and both ways
inside one, the exact prefix cache, training on [noisy ; clean] with complementary masks, and tiny-code-block."""

from __future__ import annotations

import pytest
import torch
from conftest import PROMPTS, _save

from playground.events import output_ids
from playground.models.loading import MODELS_DIR
from playground.runtime.canvas import block_span
from playground.training.block import block_loss, training_mask

SHIPPED = "tiny-code-block"
HAS_SHIPPED = (MODELS_DIR / SHIPPED / "config.json").exists()
needs_shipped = pytest.mark.skipif(not HAS_SHIPPED, reason=f"{SHIPPED} is not trained yet "
                                   "(python -m playground.training.train block)")


def _block_model(block: int = 8):
    from transformers import EuroBertConfig, EuroBertForMaskedLM
    torch.manual_seed(0)
    config = EuroBertConfig(vocab_size=4096, pad_token_id=1, initializer_range=0.2, hidden_size=64,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, intermediate_size=128,
                            max_position_embeddings=256, bos_token_id=0, eos_token_id=0, mask_token_id=2,
                            shift_logits=True, block_size=block)
    return EuroBertForMaskedLM(config).eval()


@pytest.fixture(scope="module")
def block_folder(model_root) -> str:
    folder = model_root / "eurobert-block"
    if not (folder / "config.json").exists():
        _save(_block_model(), folder)
    return str(folder)


def _run(run_engine, model, new=32, prompt=PROMPTS[0], **params):
    started, steps, finished = run_engine(prompt=prompt, model=model, method="diffusion", max_new_tokens=new,
                                          stop_at_eos=False, params=params)
    assert finished.status == "finished", finished.error
    return output_ids(steps), finished.stats.target_forwards


def test_training_mask_is_causal_across_blocks_and_both_ways_inside():
    m = training_mask(8, 4)
    noisy_noisy, noisy_clean, clean_noisy, clean_clean = m[:8, :8], m[:8, 8:], m[8:, :8], m[8:, 8:]
    assert noisy_noisy[1, 3] and noisy_noisy[3, 0] and not noisy_noisy[3, 4] and not noisy_noisy[4, 3]
    assert not noisy_clean[:4].any() and noisy_clean[5, :4].all() and not noisy_clean[5, 4:].any()
    assert not clean_noisy.any()  # the clean half never sees the noise
    assert torch.equal(clean_clean, torch.ones(8, 8, dtype=torch.bool).tril())


def test_clean_half_is_the_autoregressive_model_and_blocks_do_not_see_later_ones():
    model = _block_model(block=4)
    x = torch.randint(5, 4000, (1, 12))
    gen = torch.Generator().manual_seed(0)
    loss = block_loss(model, x, torch.tensor([2]), 2, gen)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
    from playground.runtime.canvas import additive
    with torch.no_grad():  # token-causal reading of the clean text alone == the clean half of a [noisy ; clean] row
        causal = additive(torch.ones(12, 12, dtype=torch.bool).tril(), torch.float32)
        alone = model.model(input_ids=x, attention_mask=causal).last_hidden_state
        noisy = torch.where(torch.rand(1, 12) < 0.5, 2, x)
        pos = torch.arange(12).repeat(2)[None]
        both = model.model(input_ids=torch.cat([noisy, x], 1), attention_mask=additive(training_mask(12, 4),
                           torch.float32), position_ids=pos).last_hidden_state
        assert torch.allclose(both[:, 12:], alone, atol=1e-5)
        later = noisy.clone()
        later[0, 8:] = 7  # the last block changed: the first two blocks' outputs must not move
        moved = model.model(input_ids=torch.cat([later, x], 1), attention_mask=additive(training_mask(12, 4),
                            torch.float32), position_ids=pos).last_hidden_state
        assert torch.allclose(moved[:, :8], both[:, :8], atol=1e-5)


def test_block_span_holds_sub_blocks_in_the_model_block():
    assert block_span(10, 10 + 64, 8, 16, 32) == (10, 42)
    assert block_span(10, 10 + 64, 40, 48, 32) == (42, 74)
    assert block_span(10, 10 + 40, 32, 40, 32) == (42, 50)  # the last block is shorter
    assert block_span(10, 10 + 64, 0, 64, 32) == (10, 74)   # a canvas block longer than the model's: itself


@pytest.mark.parametrize("strategy", ["fixed_steps", "threshold", "freedave"])
def test_every_cache_is_exact_on_a_random_block_model(run_engine, block_folder, strategy):
    outs = {c: _run(run_engine, block_folder, strategy=strategy, cache=c, block=4) for c in ("none", "prefix", "dual")}
    assert outs["none"][0] == outs["prefix"][0] == outs["dual"][0]
    assert outs["none"][1] == outs["prefix"][1] == outs["dual"][1]


def test_freedave_equals_one_token_per_forward_on_a_random_block_model(run_engine, block_folder):
    slow = _run(run_engine, block_folder, strategy="fixed_steps", cache="prefix", block=8)
    fast = _run(run_engine, block_folder, strategy="freedave", cache="prefix", block=8, candidates=3)
    assert fast[0] == slow[0] and slow[1] == 32 and fast[1] < 32


@needs_shipped
def test_shipped_block_model_is_a_diffusion_model_that_commits_several_tokens_a_forward(run_engine):
    from playground.models.loading import shipped_kind
    assert shipped_kind(SHIPPED) == "masked"
    for prompt in PROMPTS:
        slow = _run(run_engine, SHIPPED, new=64, prompt=prompt, strategy="fixed_steps", cache="prefix", block=32)
        fast = _run(run_engine, SHIPPED, new=64, prompt=prompt, strategy="threshold", cache="prefix", block=32,
                    threshold=0.9)
        assert slow[1] == 64 and fast[1] < 64
        assert _run(run_engine, SHIPPED, new=64, prompt=prompt, strategy="fixed_steps", cache="none",
                    block=32)[0] == slow[0]


def test_made_from_tiny_code_the_causal_reading_is_tiny_code_exactly():
    from transformers import AutoModelForCausalLM

    from playground.runtime.canvas import additive
    from playground.training.block import build_block_model
    from playground.training.configs import BLOCK
    from playground.training.tokenizer import load_tokenizer
    tokenizer = load_tokenizer()
    model = build_block_model(BLOCK.model, tokenizer, "tiny-code", BLOCK.block_size).eval()
    ar = AutoModelForCausalLM.from_pretrained(MODELS_DIR / "tiny-code", dtype=torch.float32).eval()
    x = torch.tensor([tokenizer.encode(PROMPTS[0])])
    causal = additive(torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril(), torch.float32)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x, attention_mask=causal).logits, ar(input_ids=x).logits, atol=1e-4)


def test_held_out_loss_is_the_diffusion_part_and_repeatable():
    from playground.training.block import block_heldout_loss
    from playground.training.tokenizer import load_tokenizer
    model = _block_model(block=8)
    windows = torch.randint(5, 4000, (4, 96))
    first = block_heldout_loss(model, windows, load_tokenizer())
    assert first > 0 and first == block_heldout_loss(model, windows, load_tokenizer())
