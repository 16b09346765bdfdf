"""Sequence-level distillation data: the rows are the shipped target's own greedy continuations, cached, and the
training batches drawn from them keep each group's prompt length."""

from __future__ import annotations

import numpy as np
import torch

from playground.data import stdlib as data
from playground.models.loading import MODELS_DIR
from playground.training import configs, distill, lm, loop
from playground.training.tokenizer import load_tokenizer

CFG = distill.DistillConfig(rows=4, group=2, new_tokens=6, min_prefix=12, max_prefix=20)


def _fake_stdlib(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)
    rng = np.random.default_rng(0)  # token ids of ordinary text pieces: the teacher continues anything
    monkeypatch.setattr(data, "token_array", lambda tokenizer, split: rng.integers(300, 4000, 5000).astype(np.uint16))


def _greedy(model, ids: list[int], n: int) -> list[int]:
    """Greedy decoding the slow, obvious way: the whole sequence again for every token."""
    for _ in range(n):
        ids = ids + [int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())]
    return ids


def test_rows_are_the_teachers_greedy_continuations_and_are_cached(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM
    _fake_stdlib(monkeypatch, tmp_path)
    tokenizer = load_tokenizer()
    made = distill.teacher_continuations(CFG, tokenizer, torch.device("cpu"))
    assert made.rows.shape == (4, CFG.max_prefix + CFG.new_tokens)
    teacher = AutoModelForCausalLM.from_pretrained(MODELS_DIR / CFG.teacher, dtype=torch.float32).eval()
    with torch.no_grad():
        for row, p in zip(made.rows, made.prefix):
            assert CFG.min_prefix <= p <= CFG.max_prefix
            prompt = row[:p].tolist()
            assert row[:p + CFG.new_tokens].tolist() == _greedy(teacher, prompt, CFG.new_tokens)
            assert (row[p + CFG.new_tokens:] == tokenizer.pad_token_id).all()
    assert made.prefix[0] == made.prefix[1] and made.prefix[2] == made.prefix[3]  # one prompt length per group

    def no_teacher(*args, **kwargs):
        raise AssertionError("the cached rows should have been read, not made again")
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_teacher)
    again = distill.teacher_continuations(CFG, tokenizer, torch.device("cpu"))
    assert (again.rows == made.rows).all() and (again.prefix == made.prefix).all()


def test_a_distilled_batch_is_one_group_cut_to_its_length(monkeypatch, tmp_path):
    rows = np.arange(8 * 10).reshape(8, 10) % 4000
    prefix = np.repeat([3, 5, 4, 2], 2)
    made = distill.Distilled(rows, prefix, new_tokens=5, group=2)
    cfg = configs.TrainConfig(batch_size=2, seq_len=16, natural_fraction=0.0)
    for step in range(6):
        x, p = loop.training_batch(step, cfg, np.arange(100), made, None, None)
        assert (p == p[0]).all() and x.shape == (2, int(p[0]) + 5)
        for r in x.tolist():
            assert r in [row[:len(r)] for row in rows.tolist()]
    natural = configs.TrainConfig(batch_size=2, seq_len=16, natural_fraction=1.0)
    x, p = loop.training_batch(0, natural, np.arange(100), made, None, None)
    assert p is None and x.shape == (2, 16)  # stdlib windows, for the next-token objective


def test_a_draft_cut_from_a_target_is_its_early_exit(monkeypatch, tmp_path):
    """load_first_layers makes a 2-layer model that computes the 4-layer source's LM head read after 2 layers, and
    teacher_kl's early-exit term is the KL of exactly that read: zero against such a model, positive otherwise."""
    tokenizer = load_tokenizer()
    shape = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    source = lm.build_model(configs.ModelConfig(num_hidden_layers=4, **shape), tokenizer)
    for w in source.parameters():  # weights large enough that every layer changes the output distribution
        if w.dim() == 2:
            torch.nn.init.normal_(w, std=0.2)
    source.save_pretrained(tmp_path / "source")
    monkeypatch.setattr(lm, "MODELS_DIR", tmp_path)
    cut = lm.build_model(configs.ModelConfig(num_hidden_layers=2, **shape), tokenizer)
    lm.load_first_layers(cut, "source")
    x = torch.randint(3, 4096, (2, 12))
    with torch.no_grad():
        hidden = source(input_ids=x, output_hidden_states=True).hidden_states[2]
        assert torch.allclose(cut(input_ids=x).logits, source.lm_head(source.model.norm(hidden)), atol=1e-5)
        pad = tokenizer.pad_token_id
        whole = lm.teacher_kl(source, cut, x, pad)
        assert whole > 0.05  # the 4-layer model is not its 2-layer cut
        assert torch.allclose(lm.teacher_kl(source, cut, x, pad, exit_layer=2, exit_weight=1.0), whole, atol=1e-5)
        assert lm.teacher_kl(source, cut, x, pad, exit_layer=1, exit_weight=1.0) > whole + 0.05
