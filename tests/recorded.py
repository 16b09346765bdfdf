"""Runs stored for the exported-page tests (tests/test_share.py, tests/test_share_browser.py): a hostile one, whose
prompt, tokens, drafts and model name hold HTML and script, and real ones decoded by the engine."""

from __future__ import annotations

from pathlib import Path

from playground.events import ACCEPTED, BONUS, REPLACEMENT, TARGET, RunFinished, RunStarted, Stats, Step
from playground.storage.recorder import Recorder

# each would run script or load something if a page wrote it as HTML
HOSTILE = ["</script><script>alert('token')</script>", "<img src=x onerror=alert('img')>", "<!--", " & ",
           '"><svg onload=alert(1)>', "</style><script>alert('style')</script>", "\n", "plain"]


def hostile_steps(n: int = 6) -> list[Step]:
    """n speculative steps, each committing three tokens of HOSTILE text: two accepted drafts, then a replacement
    of a third, rejected, hostile draft (even steps) or a bonus token (odd steps)."""
    steps = []
    for i in range(n):
        texts = [HOSTILE[(3 * i + j) % len(HOSTILE)] for j in range(3)]
        rejected = i % 2 == 0  # else both drafts accepted, then the target's bonus token
        drafted_texts = [texts[0], texts[1], *(["<script>alert('draft')</script>"] if rejected else [])]
        d = len(drafted_texts)
        steps.append(Step(index=i, tokens=[10 * i + j for j in range(3)],
                          sources=[ACCEPTED, ACCEPTED, REPLACEMENT if rejected else BONUS], p=[0.9, 0.8, 0.7],
                          q=[0.8, 0.7, None], drafted=list(range(1, d + 1)), draft_p=[0.9, 0.8, 0.1][:d],
                          draft_q=[0.8, 0.7, 0.6][:d], accepted=2, gamma=d, target_forwards=1, draft_forwards=d,
                          draft_s=0.01, target_s=0.02, other_s=0.001, texts=texts, drafted_texts=drafted_texts))
    return steps


def hostile_run(steps: list[Step], method: str = "speculative") -> list:
    """The events of a run with `steps`, its prompt and model name hostile too."""
    started = RunStarted(method=method, model="<script>alert('model')</script>", draft="</script>", prompt=(
        "<script>alert('prompt')</script>\n"), prompt_ids=[1, 2], settings={"gamma": 3, "temperature": 0.0},
        prompt_texts=["<script>", "x"])
    text = "".join(t for s in steps for t in s.texts)
    finished = RunFinished(status="finished", text=text, token_ids=[t for s in steps for t in s.tokens],
                           stats=Stats.from_steps(steps, 0.2))
    return [started, *steps, finished]


def autoregressive_of(events: list) -> list:
    """The autoregressive run of the same prompt and settings that the Generate tab stores right after a run to
    compare with it: one TARGET token per step, the same text, slower."""
    started, finished = events[0], events[-1]
    steps = [Step(index=i, tokens=[t], sources=[TARGET], p=[0.9], q=[None], target_s=0.05, texts=[text])
             for i, (t, text) in enumerate(zip(finished.token_ids, (t for s in events[1:-1] for t in s.texts)))]
    return [RunStarted(method="autoregressive", model=started.model, draft=None, prompt=started.prompt,
                       prompt_ids=started.prompt_ids, settings=dict(started.settings)), *steps,
            RunFinished(status="finished", text=finished.text, token_ids=finished.token_ids,
                        stats=Stats.from_steps(steps, 1.0))]


def store(db: Path, *runs: list) -> list[int]:
    """Record each run's events into db, in order; their run ids."""
    recorder = Recorder(db)
    ids = []
    for events in runs:
        stored = list(recorder.record(iter(events)))
        ids.append(stored[0].run_id)
    return ids
