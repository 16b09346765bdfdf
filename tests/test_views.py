"""The views are pure functions of events: escaping, colouring, stats and figures, live and replay alike."""

from __future__ import annotations

import re

from playground.events import (
    ACCEPTED,
    BONUS,
    REPLACEMENT,
    TARGET,
    RunFinished,
    RunStarted,
    Stats,
    Step,
)
from playground.views import run as views
from playground.views import static_files


def spec_step(index: int, texts: list[str], sources: list[str], accepted: int, drafted: int = 3) -> Step:
    n = len(texts)
    return Step(index=index, tokens=list(range(n)), sources=sources, p=[0.9] * n, q=[0.8] * (n - 1) + [None],
                drafted=list(range(drafted)), draft_p=[0.5] * drafted, draft_q=[0.6] * drafted, accepted=accepted,
                gamma=drafted, draft_forwards=drafted, draft_s=0.01, target_s=0.02, other_s=0.001, texts=texts,
                drafted_texts=[f"d{i}" for i in range(drafted)])


STEPS = [spec_step(0, ["def", " f", "(x"], [ACCEPTED, ACCEPTED, REPLACEMENT], accepted=2),
         spec_step(1, ["):\n", "    ", "return", " x"], [ACCEPTED, ACCEPTED, ACCEPTED, BONUS], accepted=3)]
STARTED = RunStarted(method="speculative", model="m", draft="d", prompt="<b>p</b>", prompt_ids=[1],
                     settings={"gamma": 3}, run_id=7)


def test_chips_one_per_token_with_source_class_step_and_probabilities():
    out = views.chips_html(STEPS)
    assert len(re.findall(r'class="pg-chip pg-\w+[^"]*" title="[^"]*" data-step="\d"', out)) == 7
    assert out.count("pg-accepted") >= 5 and "pg-replacement" in out and "pg-bonus" in out
    assert "q (draft) = 0.800" in out and "p (target) = 0.900" in out and "q (draft) = —" in out
    assert out.count("pg-new") == 4 + 1  # the newest step's chips, and the legend entry


def test_untrusted_text_is_escaped_and_newlines_break_outside_chips():
    step = Step(index=0, tokens=[1, 2], sources=[TARGET, TARGET], p=[1.0, 1.0], q=[None, None],
                texts=["<script>alert(1)</script>", "a\n  b"])
    out = views.chips_html([step], prompt="<img src=x onerror=alert(2)>")
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x" in out
    assert "↵</span></span>\n<span" in out  # the line breaks between chips; "  b" goes on in a continuation chip
    assert out.count("data-step") == 2


def test_step_html_tells_accepted_rejected_and_unverified_drafts():
    out = views.step_html(spec_step(0, ["a", "b"], [ACCEPTED, REPLACEMENT], accepted=1, drafted=3))
    assert out.count("pg-accepted") == 2 and "pg-rejected" in out and "pg-unverified" in out
    assert "accepted 1 of 3" in out


def test_stats_mid_run_and_at_the_end():
    mid = views.stats_html(STEPS)
    assert 'data-stat="new_tokens"><b>7</b>' in mid and 'data-stat="saved"><b>5</b>' in mid
    assert 'data-stat="acceptance_rate"><b>83%</b>' in mid
    final = RunFinished(status="finished", text="", token_ids=[], stats=Stats(new_tokens=9, target_forwards=3))
    assert 'data-stat="new_tokens"><b>9</b>' in views.stats_html(final)
    assert 'data-stat="acceptance_rate"><b>—</b>' in views.stats_html([])


def test_figures_have_titles_axes_and_the_autoregressive_baseline():
    acc, prog = views.accepted_figure(STEPS), views.progress_figure(STEPS)
    assert acc.layout.xaxis.title.text and acc.layout.yaxis.title.text
    assert {t.name for t in acc.data} >= {"accepted draft", "replacement", "bonus", "gamma (drafted)"}
    assert list(prog.data[1].y) == [0, 3, 7] and list(prog.data[1].x) == [0, 1, 2]
    assert "autoregressive" in prog.data[0].name
    assert views.accepted_figure([]).layout.annotations  # "no steps yet"


def test_replay_at_every_step_matches_the_live_view():
    finished = RunFinished(status="finished", text="", token_ids=[],
                           stats=Stats.from_steps(STEPS, sum(s.draft_s + s.target_s + s.other_s for s in STEPS)))
    for k in range(len(STEPS) + 1):
        live = views.run_view(STARTED, STEPS[:k], finished if k == len(STEPS) else None)
        replay = views.run_view(STARTED, STEPS[:k], finished, total=len(STEPS))
        assert live.chips == replay.chips and live.stats == replay.stats and live.step == replay.step
        assert live.accepted.to_json() == replay.accepted.to_json()
        assert f"step {k} of 2" in replay.status and "&lt;b&gt;p" in replay.chips


# --- how a run drafts (views_drafts): each view from hand-made steps, escaped, and absent where it does not apply

from playground.views import drafts as views_drafts  # noqa: E402

HOSTILE = "<script>alert(1)</script>"
AUTOREGRESSIVE = [Step(index=i, tokens=[i], sources=[TARGET], p=[0.9], q=[None], texts=["x"]) for i in range(3)]


def drafting_step(index: int, q: list[float], accepted: int, **fields) -> Step:
    n = len(q)
    done = min(accepted + 1, n + 1)
    return Step(index=index, tokens=list(range(done)), sources=[ACCEPTED] * accepted + [REPLACEMENT if accepted < n
                else BONUS], p=[0.9] * done, q=[*q[:accepted], None], drafted=list(range(100, 100 + n)),
                draft_p=[0.5] * n, draft_q=q, accepted=accepted, draft_forwards=n, texts=["t"] * done,
                drafted_texts=[f"d{i}" for i in range(n)], **fields)


def test_draft_length_figure_shows_gamma_drafted_accepted_and_why_the_schedule_moved():
    steps = [drafting_step(0, [0.9, 0.8, 0.3], 1, gamma=4, gamma_reason=f"1 of 3 accepted: gamma 4 -> 3 {HOSTILE}"),
             drafting_step(1, [0.9, 0.9, 0.9], 3, gamma=3),
             drafting_step(2, [0.9], 0, gamma=3, gamma_reason="0 of 1 accepted: gamma 3 -> 2")]
    fig = views_drafts.draft_length_figure(steps)
    traces = {t.name: t for t in fig.data}
    assert list(traces["gamma asked"].y) == [4, 3, 3]
    assert list(traces["drafted"].y) == [3, 3, 1] and list(traces["accepted"].y) == [1, 3, 0]
    reasons = list(traces["gamma asked"].customdata)
    assert "gamma 4 -&gt; 3 &lt;script&gt;" in reasons[0] and reasons[1] == "schedule unchanged"
    assert not any("<script" in r for r in reasons)
    changed = traces["schedule changed gamma / threshold after this step"]
    assert list(changed.x) == [1, 3]  # steps as people count them, from 1
    assert fig.layout.title.text == "Draft length per step" and fig.layout.xaxis.title.text
    assert views_drafts.draft_length_figure(AUTOREGRESSIVE) is None
    assert views_drafts.draft_length_figure([]) is None


def test_confidence_figure_plots_each_draft_probability_against_the_threshold():
    steps = [drafting_step(0, [0.9, 0.6, 0.35], 1, gamma=8, threshold=0.4),
             drafting_step(1, [0.8, 0.2], 2, gamma=8, threshold=0.41)]
    steps[0].drafted_texts = ["a", HOSTILE, "c"]
    fig = views_drafts.confidence_figure(steps)
    traces = {t.name: t for t in fig.data}
    assert list(traces["threshold"].y) == [0.4, 0.41, 0.41] and traces["threshold"].line.shape == "hv"
    assert list(traces["threshold"].x) == [0.5, 1.5, 2.5]  # steps 1-3, each from its left edge
    assert list(traces["accepted"].y) == [0.9, 0.8, 0.2]
    assert list(traces["rejected"].y) == [0.6] and list(traces["not verified (after a rejection)"].y) == [0.35]
    assert all(0 <= x - 1 < 0.5 for x in traces["rejected"].x)  # drawn inside its step's slot (step 1)
    hover = " ".join(t for tr in fig.data if tr.text for t in tr.text)
    assert "&lt;script&gt;" in hover and "<script" not in hover
    assert views_drafts.confidence_figure([drafting_step(0, [0.9], 1, gamma=4)]) is None  # no threshold
    assert views_drafts.confidence_figure(AUTOREGRESSIVE) is None


def test_layer_stack_greys_the_skipped_sub_layers_of_the_current_step():
    first = drafting_step(0, [0.9], 1, gamma=8, layers=4, skipped=["1.attn", "1.mlp"])
    now = drafting_step(1, [0.9], 1, gamma=8, layers=4, skipped=["1.attn", "2.attn", "2.mlp", HOSTILE])
    last = Step(index=2, tokens=[5], sources=[TARGET], p=[0.9], q=[None], texts=["x"])  # drafted nothing
    out = views_drafts.layer_stack_html([first, now, last])
    assert re.findall(r'data-sublayer="(\d\.\w+)"', out) == [f"{i}.{k}" for i in range(4) for k in ("attn", "mlp")]
    skipped = re.findall(r'class="pg-sub pg-\w+ pg-skipped" data-sublayer="([\w.]+)"', out)
    assert skipped == ["1.attn", "2.attn", "2.mlp"]  # the current step's set; unknown names are not drawn
    assert "3 of 8 sub-layers skipped while drafting" in out and "changed at step 2" in out  # steps counted from 1
    assert "<script" not in out and "script" not in out
    only_first = views_drafts.layer_stack_html([first])
    assert "2 of 8 sub-layers skipped" in only_first and "changed" not in only_first
    assert views_drafts.layer_stack_html([drafting_step(0, [0.9], 1, gamma=4)]) is None
    assert views_drafts.layer_stack_html([]) is None


def test_prompt_pieces_align_known_token_texts_and_merge_unknown_ones():
    prompt = "def f(x):\n    return x"
    ids = [1, 2, 3, 4, 5, 6, 7]
    texts = ["def", " f", "(x", "):", "\n   ", " return", " x"]
    exact = views_drafts.prompt_pieces(prompt, ids, dict(zip(ids, texts)))
    assert exact == [(i, i + 1, t) for i, t in enumerate(texts)]
    partial = views_drafts.prompt_pieces(prompt, ids, {1: "def", 4: "):", 7: " x"})
    assert partial == [(0, 1, "def"), (1, 3, " f(x"), (3, 4, "):"), (4, 6, "\n    return"), (6, 7, " x")]
    assert "".join(t for _, _, t in views_drafts.prompt_pieces(prompt, ids, {})) == prompt


def copy_run():
    prompt = f"a = 1\n{HOSTILE}\na ="
    ids = [10, 11, 12, 13, 14, 15, 10, 11]
    texts = ["a", " =", " 1", "\n", HOSTILE, "\n", "a", " ="]
    started = RunStarted(method="prompt_lookup", model="m", draft=None, prompt=prompt, prompt_ids=ids, settings={})
    copied = Step(index=0, tokens=[12, 13, 16], sources=[ACCEPTED, ACCEPTED, REPLACEMENT], p=[0.9] * 3,
                  q=[1.0, 1.0, None], drafted=[12, 13, 14], draft_p=[0.9, 0.9, 0.1], draft_q=[1.0] * 3, accepted=2,
                  gamma=8, draft_source=2, texts=[" 1", "\n", "b"], drafted_texts=texts[2:5])
    plain = Step(index=1, tokens=[17], sources=[TARGET], p=[0.9], q=[None], gamma=8, texts=[" ok"])
    return started, [copied, plain]


def test_copy_view_links_each_copied_token_to_its_source_span_in_the_context():
    started, steps = copy_run()
    out = views_drafts.copy_html(started, steps)
    drafted = re.findall(r'<span class="pg-chip pg-(\w+)" data-src="(\d+)" data-span="(\d+) (\d+)"', out)
    assert drafted == [("accepted", "2", "2", "5"), ("accepted", "3", "2", "5"), ("rejected", "4", "2", "5")]
    context = [(int(a), int(b)) for a, b in dict.fromkeys(
        re.findall(r'class="pg-chip pg-ctx [^"]*" data-a="(\d+)" data-b="(\d+)"', out))]
    # 8 prompt + 4 output tokens; prompt tokens never seen decoded in the run (ids 10, 11, 15) share a chip
    assert context == [(0, 2), (2, 3), (3, 4), (4, 5), (5, 8), (8, 9), (9, 10), (10, 11), (11, 12)]
    assert out.count("pg-src-latest") == 3  # the latest copied span: positions 2-4
    assert "<script" not in out and out.count("&lt;script&gt;") == 2  # in the context and in the drafted chips
    assert "1 of 2 steps copied a draft" in out and "<b>3</b> copied from position 2" in out
    assert "window.pgCopyHover" in static_files.copy_hover_js()  # the hover script the app attaches to this view
    assert views_drafts.copy_html(started, steps[1:]) is None
    assert views_drafts.copy_html(STARTED, STEPS) is None


def test_run_view_hides_the_draft_views_that_do_not_apply():
    started = RunStarted(method="autoregressive", model="m", draft=None, prompt="p", prompt_ids=[1], settings={})
    plain = views.run_view(started, AUTOREGRESSIVE)
    assert all(getattr(plain, name) is None for name in views.OPTIONAL)
    spec = views.run_view(STARTED, STEPS)
    assert spec.drafts is not None and spec.confidence is None and spec.layers is None and spec.copies is None
    c_started, c_steps = copy_run()
    copy = views.run_view(c_started, c_steps, total=2)
    assert copy.copies is not None and copy.drafts is not None and copy.layers is None
    for k in range(3):  # replay draws what the live view drew after k steps
        live, replay = views.run_view(c_started, c_steps[:k]), views.run_view(c_started, c_steps[:k], total=2)
        assert live.copies == replay.copies
        assert (live.drafts is None and replay.drafts is None) or live.drafts.to_json() == replay.drafts.to_json()


def test_compare_verdict_and_ratios_are_against_the_autoregressive_reference():
    from playground.compare import drafting as compare

    def done(ids, tps, run_id):
        return RunFinished(status="finished", text="", token_ids=ids, run_id=run_id,
                           stats=Stats(new_tokens=len(ids), tokens_per_s=tps))
    ar, same = done([1, 2, 3], 50.0, 1), [done([1, 2, 3], tps, i) for i, tps in ((2, 60.0), (3, 75.0), (4, 66.0))]
    verdict = compare.verdict_html([ar, *same])
    assert 'data-verdict="identical"' in verdict and "run #1" in verdict and "50.0 tokens/s" in verdict
    wrong = compare.verdict_html([ar, same[0], done([1, 9, 3], 70.0, 5), same[2]])
    assert 'data-verdict="different"' in wrong and "from token 1 on" in wrong
    assert 'data-verdict="failed"' in compare.verdict_html([ar, *same[:2]])  # not every run ran
    assert "1 of 4 done" in compare.verdict_html([ar, None, None, None], running="the chain")
    static = compare.stats_html(same[1].stats, chain=same[0].stats, reference=ar.stats)
    assert "1.50× autoregressive · 1.25× the chain" in static
    assert "1.20× autoregressive</small>" in compare.stats_html(same[0].stats, reference=ar.stats)
    assert [r.method for r in compare.requests("p", "m", "d", 8)] == ["autoregressive", "speculative",
                                                                      "tree_speculative", "tree_speculative"]
    assert compare.requests("p", "m", "d", 8)[0].draft is None


def test_a_replayed_run_finds_the_autoregressive_run_made_to_compare_with_it():
    from dataclasses import replace

    from playground.compare import drafting as compare
    settings = {"max_new_tokens": 32, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0, "stop_at_eos": True}
    run = RunStarted(method="speculative", model="m", draft="d", prompt="p", prompt_ids=[1],
                     settings={**settings, "gamma": 4}, run_id=7)
    ar = RunStarted(method="autoregressive", model="m", draft=None, prompt="p", prompt_ids=[1], settings=settings,
                    run_id=8)
    assert compare.is_reference_of(run, ar)
    assert not compare.is_reference_of(run, replace(ar, prompt="q"))
    assert not compare.is_reference_of(run, replace(ar, method="speculative"))
    assert not compare.is_reference_of(run, replace(ar, settings={**settings, "max_new_tokens": 16}))
    assert not compare.is_reference_of(run, replace(ar, settings={**settings, "seed": 1}))


def test_the_settings_line_lists_only_the_parameters_the_run_used():
    settings = {"max_new_tokens": 8, "gamma": 4, "schedule": "constant", "min_confidence": 0.4, "max_reject": 0.7,
                "target_acceptance": 0.8}
    line = views.status_html(RunStarted(method="speculative", model="m", draft="d", prompt="p", prompt_ids=[1],
                                        settings=settings))
    assert "gamma=4" in line and "schedule=constant" in line
    assert not any(name in line for name in ("min_confidence", "max_reject", "target_acceptance"))
    adaptive = views.status_html(RunStarted(method="speculative", model="m", draft="d", prompt="p", prompt_ids=[1],
                                            settings={**settings, "schedule": "adaptive"}))
    assert "min_confidence=0.4" in adaptive and "target_acceptance=0.8" in adaptive and "max_reject" not in adaptive
    fixed = views.status_html(RunStarted(method="diffusion", model="m", draft=None, prompt="p", prompt_ids=[1],
                                         settings={"strategy": "fixed_steps", "steps": 0, "threshold": 0.9}))
    assert "steps=0" in fixed and "threshold" not in fixed


def test_hover_labels_show_whole_trace_names():
    """Plotly cuts a trace's name in a hover label at 15 characters ("draft tree n... : 8", issue 24); every styled
    figure shows the whole name."""
    from playground.views.chain import accepted_figure
    from playground.views.common import new_figure, style_figure
    assert style_figure(new_figure(), "t", "x", "y", True).layout.hoverlabel.namelength == -1
    assert accepted_figure([]).layout.hoverlabel.namelength == -1
