"""Learn2PD (strategy `learn2pd` of the diffusion method): the filter's features read the canvas right, the trainer
writes a filter a run then uses, the shipped filter decodes in fewer forwards than one token per forward, and a model
without a filter is refused in one line that says how to make one."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import PROMPTS
from test_diffusion import _mlm

from playground.errors import PlaygroundError
from playground.events import output_ids
from playground.methods.unmask_filter import features
from playground.models import loading
from playground.models.unmask_filter import CONFIG, FEATURES, WEIGHTS, filter_beside
from playground.runtime.canvas import Canvas, Prediction
from playground.training.learn2pd import FilterConfig, train_filter

SHIPPED = "tiny-code-diffusion"
HAS_FILTER = (loading.MODELS_DIR / SHIPPED / WEIGHTS).exists()


def test_features_read_the_canvas():
    """Block [0, 4) of a canvas with position 1 committed: edges count as known on the left, masked on the right."""
    canvas = Canvas.new([5, 6], 8, mask_id=2, block=4)
    canvas.commit([1], [9], [0.8], 0)
    canvas.note_guesses(0, torch.tensor([7, 9, 11, 0]), torch.tensor([0.5, 0.8, 0.6, 0.95]))
    token = torch.tensor([[7, 9, 12, 0]])
    conf = torch.tensor([[0.6, 0.8, 0.3, 0.9]])
    pred = Prediction(0, token, conf, torch.tensor([[5.0, 30.0, 1.0, 8.0]]))
    x = features(canvas, [0, 2, 3], pred, 0, 4, eos_id=0)
    assert x.shape == (3, len(FEATURES))
    f = {name: x[:, i].tolist() for i, name in enumerate(FEATURES)}
    assert f["confidence"] == pytest.approx([0.6, 0.3, 0.9])
    assert f["margin"] == pytest.approx([0.5, 0.1, 0.8])
    assert f["from_first_masked"] == pytest.approx([0.0, 0.5, 0.75])
    assert f["masked_share"] == pytest.approx([0.75] * 3)
    assert f["left_known"] == [1.0, 1.0, 0.0]          # the prompt, committed position 1, masked position 2
    assert f["left_confidence"] == pytest.approx([1.0, 1.0, 0.3])
    assert f["right_known"] == [1.0, 0.0, 0.0]         # position 1 committed; past the block: masked
    assert f["right_confidence"] == pytest.approx([1.0, 0.9, 0.0])
    assert f["is_end"] == [0.0, 0.0, 1.0]
    assert f["same_guess"] == [1.0, 0.0, 1.0]          # 7 == 7, 12 != 11, 0 == 0
    assert f["previous_confidence"] == pytest.approx([0.5, 0.0, 0.95])


@pytest.fixture(scope="module")
def trained(model_root, tmp_path_factory):
    """A random EuroBERT with a filter trained on a few of its own slow runs."""
    folder = tmp_path_factory.mktemp("l2pd") / "eurobert"
    shutil.copytree(_mlm("eurobert", model_root), folder)
    about = train_filter(FilterConfig(model=str(folder), prompts=4, new_tokens=16, block=8, steps=30))
    return folder, about


def test_the_trainer_writes_a_filter_runs_use(trained, run_engine):
    folder, about = trained
    assert (folder / WEIGHTS).exists() and (folder / CONFIG).exists()
    assert about["train_positions"] > 0 and about["heldout_positions"] > 0
    assert 0.0 <= about["heldout_at_level"]["learn2pd"]["precision"] <= 1.0
    assert filter_beside(str(folder)) is not None
    started, steps, finished = run_engine(prompt=PROMPTS[0], model=str(folder), method="diffusion", max_new_tokens=16,
                                          stop_at_eos=False, params={"strategy": "learn2pd", "block": 8})
    assert finished.status == "finished", finished.error
    assert len(output_ids(steps)) == 16
    assert all(s.threshold == 0.98 for s in steps)  # the level each step committed at, shown by the canvas view


def test_a_model_without_a_filter_is_one_line(model_root, run_engine):
    folder = _mlm("eurobert", model_root)
    with pytest.raises(PlaygroundError) as refused:
        from playground.engine import Request, prepare
        prepare(Request(prompt="x = 1", model=folder, method="diffusion", params={"strategy": "learn2pd"}))
    line = str(refused.value)
    assert "\n" not in line and "train learn2pd --model" in line, line


@pytest.mark.skipif(not HAS_FILTER, reason=f"{SHIPPED} has no learn2pd filter (python -m playground.training.train "
                    "learn2pd)")
def test_the_shipped_filter_commits_several_tokens_per_forward(run_engine):
    """At a low level the filter commits many positions a forward; at its usual level still more than one."""
    runs = {}
    for level in (0.5, 0.98):
        started, steps, finished = run_engine(prompt=PROMPTS[0], model=SHIPPED, method="diffusion",
                                              max_new_tokens=32, stop_at_eos=False,
                                              params={"strategy": "learn2pd", "filter": level})
        assert finished.status == "finished", finished.error
        runs[level] = (len(output_ids(steps)), finished.stats.target_forwards)
    assert runs[0.5][0] == runs[0.98][0] == 32
    assert runs[0.5][1] < runs[0.98][1] < 32
