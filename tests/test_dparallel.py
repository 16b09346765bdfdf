"""dParallel's certainty-forcing distillation (training/dparallel.py): the loss is the masked cross-entropy plus the
weighted entropy of the positions predicted right, the prompt is never masked, and a run writes a model the
diffusion method decodes with."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from conftest import PROMPTS
from test_diffusion import _mlm

from playground.events import output_ids
from playground.training.diffusion import predicted
from playground.training.dparallel import DParallelConfig, certainty_forcing_loss, train_dparallel


def _model(model_root):
    from transformers import AutoModelForMaskedLM
    return AutoModelForMaskedLM.from_pretrained(_mlm("eurobert", model_root), dtype=torch.float32)


def test_the_loss_is_cross_entropy_plus_the_entropy_of_right_guesses(model_root):
    model = _model(model_root)
    x = torch.randint(3, 4000, (4, 24))
    plain, right = certainty_forcing_loss(model, x, 8, 2, 0.0, torch.Generator().manual_seed(0))
    forced, right2 = certainty_forcing_loss(model, x, 8, 2, 5.0, torch.Generator().manual_seed(0))
    assert right == right2 and 0.0 <= right <= 1.0
    # the same noise: the plain loss is the cross-entropy of those masked tokens, recomputed here
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(4, 1, generator=gen).clamp(0.05, 1.0)
    masked = (torch.rand(4, 24, generator=gen) < t) & (torch.arange(24)[None] >= 8)
    assert not masked[:, :8].any()
    hidden = model.model(input_ids=torch.where(masked, 2, x)).last_hidden_state
    logits = predicted(model, hidden, masked).float()
    assert plain.item() == F.cross_entropy(logits, x[masked]).item()
    assert forced.item() >= plain.item()  # entropy is never negative
    forced.backward()
    assert model.model.embed_tokens.weight.grad is not None


def test_a_run_writes_a_model_the_diffusion_method_decodes_with(model_root, tmp_path, run_engine):
    out = tmp_path / "distilled"
    cfg = DParallelConfig(base=_mlm("eurobert", model_root), name="distilled", prompts=3, prompt_tokens=16,
                          new_tokens=8, steps=2, batch_size=2, out=str(out), cache_rows=False)
    train_dparallel(cfg)
    about = json.loads((out / "training.json").read_text())
    assert about["rows"] >= 1 and len(about["log"]) == 2
    assert "certainty" in (out / "README.md").read_text()
    started, steps, finished = run_engine(prompt=PROMPTS[0], model=str(out), method="diffusion", max_new_tokens=8,
                                          stop_at_eos=False, params={"strategy": "threshold", "block": 8})
    assert finished.status == "finished", finished.error
    assert len(output_ids(steps)) == 8
