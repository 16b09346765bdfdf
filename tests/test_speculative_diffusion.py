"""speculative_diffusion: the diffusion model drafts a block, tiny-code verifies it; greedy output identical to
tiny-code's autoregressive greedy, sampling exact in distribution (chi-square, as tests/test_sampling.py), bad
pairings refused in one line."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT
from test_sampling import E2E_SAMPLING, E2E_SEEDS, assert_fits, assert_rejected

from playground.errors import PlaygroundError
from playground.models import loading as models
from playground.runtime.sampling import Sampling, probs

pytestmark = pytest.mark.skipif(not (ROOT / "assets/models/tiny-code-diffusion").exists(),
                                reason="the shipped models are not here")
COMPLETE = [json.loads(line)["prompt"] for line in (ROOT / "assets/prompts/complete.jsonl").open()][:3]


@pytest.mark.parametrize("params", [{}, {"strategy": "threshold", "block": 8}, {"steps": 0, "block": 3}])
def test_greedy_output_is_tiny_codes_autoregressive_greedy(run_engine, params):
    for prompt in COMPLETE:
        *_, ar = run_engine(prompt=prompt, model="tiny-code", method="autoregressive", max_new_tokens=40)
        started, steps, sd = run_engine(prompt=prompt, model="tiny-code", method="speculative_diffusion",
                                        max_new_tokens=40, params=params)
        assert started.draft == "tiny-code-diffusion" and sd.status == "finished", sd.error
        assert sd.token_ids == ar.token_ids, (params, prompt)
        assert sd.stats.target_forwards < ar.stats.target_forwards  # some drafted tokens were kept
        assert all((s.draft_forwards > 0 or not s.drafted) and s.accepted <= len(s.drafted) for s in steps)
        assert any(s.accepted > 0 for s in steps)


def test_sampled_first_token_follows_the_target_not_the_draft(run_engine):
    """The first generated token is drafted (the block starts there) and verified: it must be distributed as the
    target's p, not as the draft's one-hot q. A prompt where p is unsure of the drafted token gives the test power."""
    target, s = models.load("tiny-code"), Sampling(**E2E_SAMPLING)
    best = None
    for prompt in COMPLETE + ["def main(", "import os\n", "class Node:\n    def __init__(self, "]:
        ids = target.tokenizer(prompt)["input_ids"]
        with torch.inference_mode():
            p = probs(target.model(torch.tensor([ids])).logits[0, -1], s)
        _, steps, _ = run_engine(prompt=prompt, model="tiny-code", method="speculative_diffusion", max_new_tokens=3,
                                 **E2E_SAMPLING)
        drafted = steps[0].drafted[0]
        margin = min(float(p[drafted]), 1 - float(p[drafted]))
        if best is None or margin > best[0]:
            best = margin, prompt, p, drafted
    margin, prompt, p, drafted = best
    assert margin > 0.1, "no prompt whose drafted token the target finds uncertain"
    firsts = []
    for seed in range(E2E_SEEDS):
        *_, done = run_engine(prompt=prompt, model="tiny-code", method="speculative_diffusion", max_new_tokens=3,
                              seed=seed, stop_at_eos=False, **E2E_SAMPLING)
        firsts.append(done.token_ids[0])
    counts = torch.bincount(torch.tensor(firsts), minlength=p.numel())
    assert_fits(counts, p, "speculative_diffusion, first generated token")
    assert_rejected(counts, torch.nn.functional.one_hot(torch.tensor(drafted), p.numel()))


def test_bad_pairings_are_one_line_errors(run_engine):
    with pytest.raises(PlaygroundError, match="as its draft; 'tiny-code-draft' is a causal LM") as caught:
        run_engine(prompt="x", model="tiny-code", method="speculative_diffusion", draft="tiny-code-draft")
    assert "\n" not in str(caught.value)
    with pytest.raises(PlaygroundError, match="'tiny-code-diffusion' is a masked-diffusion model") as caught:
        run_engine(prompt="x", model="tiny-code-diffusion", method="speculative_diffusion")
    assert "\n" not in str(caught.value)


def test_recorded_and_replayed_with_its_drafted_blocks(db):
    from playground.engine import Request, generate
    from playground.storage.recorder import Recorder

    rec = Recorder(db)
    events = list(rec.record(generate(Request(prompt=COMPLETE[0], model="tiny-code", method="speculative_diffusion",
                                              max_new_tokens=24))))
    started, steps, finished = rec.replay(events[0].run_id)
    live = [e for e in events[1:-1] if e.__class__.__name__ == "Step"]
    assert started.draft == "tiny-code-diffusion" and finished.token_ids == events[-1].token_ids
    assert [(s.drafted, s.accepted, s.tokens) for s in steps] == [(s.drafted, s.accepted, s.tokens) for s in live]
