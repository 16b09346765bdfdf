"""Diffusion decoding: the canvas and its caches, the four strategies, FreeDave's identity with one-token-per-forward
decoding, and the training objective. On the shipped tiny-code-diffusion and on random masked LMs of several
architectures, saved and loaded like a user's model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PROMPTS, TOKENIZER_DIR, _save

from playground.errors import PlaygroundError
from playground.events import output_ids
from playground.runtime.canvas import Canvas, Denoiser
from playground.runtime.sampling import Sampling
from playground.training import diffusion
from playground.training.configs import ModelConfig, TrainConfig

MLM_ARCHS = ("eurobert", "bert", "megatron", "roberta", "distilbert", "modernbert")
CACHED_ARCHS = ("eurobert", "bert")
SHIPPED = "tiny-code-diffusion"


def _mlm_config(arch: str):
    from transformers import (
        BertConfig,
        DistilBertConfig,
        EuroBertConfig,
        MegatronBertConfig,
        ModernBertConfig,
        RobertaConfig,
    )

    common = dict(vocab_size=4096, pad_token_id=1, initializer_range=0.2)
    if arch == "bert":
        return BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                          max_position_embeddings=256, type_vocab_size=1, **common)
    if arch == "eurobert":  # with shifted logits, as the shipped model (adapted from an autoregressive one) has
        return EuroBertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                              intermediate_size=128, max_position_embeddings=256, bos_token_id=0, eos_token_id=0,
                              mask_token_id=2, shift_logits=True, **common)
    if arch == "megatron":
        return MegatronBertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                  max_position_embeddings=256, type_vocab_size=1, **common)
    if arch == "roberta":
        return RobertaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                             max_position_embeddings=260, type_vocab_size=1, **common)
    if arch == "distilbert":
        return DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=256, **common)
    return ModernBertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                            max_position_embeddings=256, bos_token_id=0, eos_token_id=0, cls_token_id=0,
                            sep_token_id=0, **common)


def _mlm(arch: str, root) -> str:
    from transformers import AutoModelForMaskedLM

    folder = root / f"{arch}-mlm"
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        _save(AutoModelForMaskedLM.from_config(_mlm_config(arch)).eval(), folder)
    return str(folder)


@pytest.fixture(scope="session", params=MLM_ARCHS)
def mlm(request, model_root) -> tuple[str, str]:
    """(arch, folder) of a random 2-layer masked LM with the shipped tokenizer, for each architecture."""
    return request.param, _mlm(request.param, model_root)


def _canvas(run) -> list[int]:
    started, steps, finished = run
    assert finished.status == "finished", finished.error
    return output_ids(steps)


def decode(run_engine, model, new=32, **params):
    return run_engine(prompt=PROMPTS[0], model=model, method="diffusion", max_new_tokens=new, stop_at_eos=False,
                      params={"block": 16, **params})


# ------------------------------------------------------------ lossless: FreeDave == one token per forward


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_freedave_equals_one_token_per_forward_on_the_shipped_model(run_engine, cache):
    for prompt in PROMPTS:
        runs = {s: run_engine(prompt=prompt, model=SHIPPED, method="diffusion", max_new_tokens=48, stop_at_eos=False,
                              params={"strategy": s, "cache": cache}) for s in ("fixed_steps", "freedave")}
        slow, fast = runs["fixed_steps"], runs["freedave"]
        assert _canvas(fast) == _canvas(slow)
        assert slow[2].stats.target_forwards == 48  # one token per forward
        assert fast[2].stats.target_forwards < 48
        assert any(s.accepted for s in fast[1]) and any(s.accepted < len(s.drafted) for s in fast[1])


def test_freedave_equals_one_token_per_forward_on_random_models(mlm, run_engine):
    arch, folder = mlm
    for cache in ("none", "prefix", "dual") if arch in CACHED_ARCHS else ("none",):
        slow = decode(run_engine, folder, strategy="fixed_steps", cache=cache)
        fast = decode(run_engine, folder, strategy="freedave", cache=cache, candidates=3)
        assert _canvas(fast) == _canvas(slow), (arch, cache)
        assert fast[2].stats.target_forwards < slow[2].stats.target_forwards == 32


@pytest.mark.parametrize("arch", CACHED_ARCHS)
def test_cache_refresh_then_reuse_gives_the_full_forward(model_root, arch):
    """With nothing committed between them, a cached forward sees what the refreshing full forward saw."""
    from playground.models import loading as models
    model = models.load(_mlm(arch, model_root)).model
    canvas = Canvas.new(list(range(10, 30)), 48, 2, 16)
    for cache in ("prefix", "dual"):
        den = Denoiser(model, cache, Sampling())
        full = den.predict(canvas.ids[None], 20, 16, 32, refresh=True)
        reused = den.predict(torch.stack([canvas.ids] * 2), 20, 16, 32, refresh=False)
        n = reused.conf.size(1)
        assert n == (32 if cache == "prefix" else 16)
        torch.testing.assert_close(reused.conf[0], full.conf[0, :n])
        torch.testing.assert_close(reused.conf[1], reused.conf[0])
        assert torch.equal(reused.token[0], full.token[0, :n])


# ------------------------------------------------------------ the strategies


def test_each_strategy_fills_the_canvas_and_records_it(run_engine):
    for strategy in ("fixed_steps", "threshold", "sched", "freedave"):
        started, steps, finished = decode(run_engine, SHIPPED, strategy=strategy)
        positions = [i for s in steps for i in s.canvas.positions]
        assert sorted(positions) == list(range(32)), strategy  # each position committed exactly once
        assert finished.stats.target_forwards == sum(s.target_forwards for s in steps)
        for step in steps:
            assert len(step.canvas.guess) == len(step.canvas.conf) == len(step.canvas.texts) == 32
            assert all(step.canvas.guess[i] == t for i, t in zip(step.canvas.positions, step.tokens))
            assert all(0.0 <= c <= 1.0 for c in step.canvas.conf)
            assert len({i // 16 for i in step.canvas.positions}) == 1, "a step commits inside one block"


def test_fixed_steps_spends_the_forwards_it_is_given(run_engine):
    for steps_param, expected in ((0, 32), (8, 8), (16, 16)):
        *_, finished = decode(run_engine, SHIPPED, strategy="fixed_steps", steps=steps_param)
        assert finished.stats.target_forwards == expected


def test_lower_thresholds_commit_more_per_forward(run_engine):
    forwards = [decode(run_engine, SHIPPED, strategy="threshold", threshold=t)[2].stats.target_forwards
                for t in (1.0, 0.5, 0.0)]
    assert forwards[0] >= forwards[1] >= forwards[2] == 2  # threshold 0: a block per forward


def test_factor_rule_commits_at_least_one(run_engine):
    _, steps, _ = decode(run_engine, SHIPPED, strategy="threshold", factor=0.001)
    assert all(len(s.tokens) >= 1 for s in steps)


def test_sched_exits_at_once_when_the_threshold_is_zero(run_engine):
    _, steps, finished = decode(run_engine, SHIPPED, strategy="sched", tau_high=0.0, tau_low=0.0)
    assert finished.stats.target_forwards == 2 and all(s.canvas.margin >= s.threshold == 0.0 for s in steps)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "exponential"])
def test_sched_threshold_falls_from_high_to_low(schedule):
    from playground.methods.diffusion import sched_threshold
    values = [sched_threshold(p / 10, schedule, 7.5, 1.0) for p in range(11)]
    assert values[0] == pytest.approx(7.5) and values[-1] == pytest.approx(1.0, abs=0.06)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_sampling_is_reproducible_and_freedave_refuses_it(run_engine):
    runs = [run_engine(prompt=PROMPTS[1], model=SHIPPED, method="diffusion", max_new_tokens=16, temperature=1.0,
                       seed=seed, params={"strategy": "threshold"}) for seed in (3, 3, 4)]
    assert runs[0][2].token_ids == runs[1][2].token_ids
    with pytest.raises(PlaygroundError, match="greedily"):
        run_engine(prompt=PROMPTS[0], model=SHIPPED, method="diffusion", temperature=1.0,
                   params={"strategy": "freedave"})


def test_end_of_text_settles_the_output(run_engine):
    """With stop_at_eos, the run ends once an end-of-text is committed with everything before it."""
    canvas = Canvas.new([5, 6], 6, 2, 3)
    canvas.commit([0, 2], [7, 0], [1.0, 1.0], 0)
    assert not canvas.finished_at_eos(0)
    canvas.commit([1], [8], [1.0], 1)
    assert canvas.finished_at_eos(0) and not canvas.finished_at_eos(None)


def test_output_follows_positions_and_stops_at_end_of_text():
    from playground.events import CanvasRecord, Step
    steps = [Step(index=0, tokens=[9, 0], sources=[], p=[], q=[], canvas=CanvasRecord(positions=[1, 2])),
             Step(index=1, tokens=[7, 1], sources=[], p=[], q=[], canvas=CanvasRecord(positions=[0, 3]))]
    assert output_ids(steps, eos_id=0) == [7, 9, 0]
    assert output_ids(steps, eos_id=None) == [7, 9, 0, 1]


# ------------------------------------------------------------ wrong pairings and parameters


def test_wrong_model_for_the_method_is_a_clear_error(run_engine, llama_pair):
    with pytest.raises(PlaygroundError, match="masked-diffusion model; methods that run it: diffusion"):
        run_engine(prompt="x = 1", model=SHIPPED, method="autoregressive")
    with pytest.raises(PlaygroundError, match="needs a masked-diffusion model"):
        run_engine(prompt="x = 1", model=llama_pair.target, method="diffusion")


def test_bad_parameters_are_clear_errors(run_engine, mlm):
    arch, folder = mlm
    with pytest.raises(PlaygroundError, match="tau_low"):
        run_engine(prompt="x", model=SHIPPED, method="diffusion", params={"tau_low": 9, "tau_high": 1})
    with pytest.raises(PlaygroundError, match="strategy must be one of"):
        run_engine(prompt="x", model=SHIPPED, method="diffusion", params={"strategy": "magic"})
    if arch not in CACHED_ARCHS:
        with pytest.raises(PlaygroundError, match="cache=none"):
            run_engine(prompt="x", model=folder, method="diffusion", params={"cache": "prefix"})


# ------------------------------------------------------------ the training objective


def test_training_windows_keep_the_prompt_and_end_with_end_of_text_then_padding():
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, 4096, size=20_000).astype(np.uint16)
    tokens[rng.choice(20_000, 40, replace=False)] = tok.eos_token_id
    cfg = TrainConfig(seq_len=64, batch_size=64, min_prefix=8, max_prefix=24, end_fraction=0.5)
    x, prefix = diffusion.diffusion_batch_at(tokens, 0, cfg, tok, diffusion.line_break_ids(tok))
    assert x.shape == (64, 64) and prefix.min() >= 8 and prefix.max() <= 24
    ended = 0
    for row, p in zip(x.tolist(), prefix.tolist()):
        cont = row[p:]
        if tok.eos_token_id in cont:
            end = cont.index(tok.eos_token_id)
            assert all(t == tok.pad_token_id for t in cont[end + 1:])
            ended += 1
    assert ended > 16  # both from end-of-text in the data and from cuts at line breaks


def test_diffusion_loss_masks_only_the_continuation():
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    torch.manual_seed(0)
    model = diffusion.build_diffusion_model(ModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                        intermediate_size=64, max_position_embeddings=64), tok)
    seen = []
    model.model.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs["input_ids"]), with_kwargs=True)
    x = torch.randint(3, 4096, (4, 32))
    prefix = torch.tensor([4, 8, 16, 31])
    loss = diffusion.diffusion_loss(model, x, prefix, tok.mask_token_id, torch.Generator().manual_seed(0))
    noisy = seen[0]
    for i, p in enumerate(prefix.tolist()):
        assert torch.equal(noisy[i, :p], x[i, :p])  # the prompt is never masked
    assert (noisy == tok.mask_token_id).any() and torch.isfinite(loss) and loss > 0


# ------------------------------------------------------------ command line


def test_generate_and_bench_on_the_command_line(run_cli, tmp_path):
    out = run_cli("generate", "--model", SHIPPED, "--method", "diffusion", "--param", "strategy=threshold",
                  "--prompt", "def add(a, b):", "--max-new-tokens", 24, "--db", tmp_path / "runs.db", "--json")
    assert out.returncode == 0, out.stderr
    import json
    result = json.loads(out.stdout)
    assert result["method"] == "diffusion" and 1 <= result["stats"]["target_forwards"] <= 24
    out = run_cli("bench", "--model", SHIPPED, "--methods", "diffusion:strategy=freedave:cache=dual",
                  "--baseline", "diffusion:strategy=fixed_steps:cache=dual", "--prompts", "dependent", "--limit", 2,
                  "--max-new-tokens", 16, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["methods"]
    fast, slow = rows["diffusion:strategy=freedave:cache=dual"], rows["diffusion:strategy=fixed_steps:cache=dual"]
    assert fast["identical_to_baseline"] is True and fast["agreement"] == 1.0 and "solved" in fast
    assert slow["mean_accepted"] == 1.0 and fast["mean_accepted"] > 1.0
    out = run_cli("generate", "--model", SHIPPED, "--prompt", "x = 1")
    assert out.returncode == 2 and "methods that run it: diffusion" in out.stderr


def test_threshold_from_the_left_commits_the_leftmost_mask_and_the_confident_run_after_it():
    from playground.methods.diffusion import commits_threshold
    from playground.runtime.canvas import Prediction
    conf = torch.tensor([[0.2, 0.95, 0.99, 0.5, 0.97, 0.99]])
    pred = Prediction(10, torch.zeros(1, 6, dtype=torch.long), conf, torch.zeros(1, 6))
    assert commits_threshold([10, 11, 12, 13, 14, 15], pred, 0.9, 0.0, "left") == [10, 11, 12]
    assert commits_threshold([11, 12, 14, 15], pred, 0.9, 0.0, "left") == [11, 12]  # 13 is committed: a gap
    assert commits_threshold([13, 14], pred, 0.9, 0.0, "left") == [13, 14]  # the leftmost, however unsure
    assert commits_threshold([10, 11, 12, 13, 14, 15], pred, 0.9, 0.0) == [12, 15, 14, 11]  # by confidence


def test_threshold_from_the_left_at_threshold_one_is_one_token_per_forward_left_to_right(run_engine, model_root):
    started, steps, finished = run_engine(prompt=PROMPTS[0], model=_mlm("eurobert", model_root), method="diffusion",
                                          max_new_tokens=12, stop_at_eos=False,
                                          params={"block": 4, "strategy": "threshold", "threshold": 1.0,
                                                  "order": "left"})
    assert finished.status == "finished", finished.error
    assert [s.canvas.positions for s in steps] == [[i] for i in range(12)]
