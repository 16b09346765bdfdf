"""Issue 25, hosted mode: what a hostile visitor found, each refused or contained when the playground is public.

Models: only shipped names and allowed Hub ids, a local path (/etc/passwd, a real model folder) refused with the
message a missing model gets; spellings never load copies; the model cache is bounded. Sizes: every size a request
can ask for is refused above its hosted limit, in one line. History: a visitor's runs are theirs until published.
The browser's side of History is tests/test_browser_hosted.py.
"""

from __future__ import annotations

import gc
import os
import shutil
import weakref
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT

from playground import hosted
from playground.compare import diffusion as compare_diffusion
from playground.engine import Request, generate, prepare
from playground.errors import PlaygroundError
from playground.events import RunStarted
from playground.models import loading as models
from playground.storage.recorder import Recorder

SECRET = "# SECRET api_key = 'sk-visitor-A-12345'\n"


@pytest.fixture
def public(monkeypatch):
    """Hosted mode on, as `app.py --public` turns it on, with an allow-list of one Hub id."""
    monkeypatch.delenv(hosted.MAX_MODELS_ENV, raising=False)
    monkeypatch.setenv(hosted.PUBLIC_ENV, "1")
    monkeypatch.setenv(hosted.ALLOWED_ENV, "SomeOrg/Some-Model")


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty model cache for this test (the session's own comes back after it)."""
    monkeypatch.setattr(models, "_cache", OrderedDict())


# ------------------------------------------------------------ when hosted mode is on


@pytest.mark.parametrize(("env", "on"), [
    ({}, False), ({"SPACE_ID": "someone/playground"}, True), ({"PLAYGROUND_PUBLIC": "1"}, True),
    ({"SPACE_ID": "someone/playground", "PLAYGROUND_PUBLIC": "0"}, False), ({"PLAYGROUND_PUBLIC": "no"}, False)])
def test_hosted_mode_is_on_on_a_space_and_when_asked(monkeypatch, env, on):
    for name in ("SPACE_ID", "PLAYGROUND_PUBLIC"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert hosted.active() is on


def test_app_public_flag_turns_hosted_mode_on(monkeypatch):
    from playground.app import build
    monkeypatch.setenv(hosted.PUBLIC_ENV, "0")  # and unset again after the test
    monkeypatch.setattr(build, "build_app", lambda *a, **k: (_ for _ in ()).throw(PlaygroundError("stop here")))
    with pytest.raises(SystemExit, match="stop here"):
        build.main(["--public"])
    assert hosted.active()


# ------------------------------------------------------------ models: no local paths, one copy each, a bounded cache


def test_a_local_path_gets_the_same_message_as_a_missing_model(public, llama_pair, tmp_path, monkeypatch):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(ROOT)
    names = ["/etc/passwd", str(a_file), str(tmp_path / "missing"), str(tmp_path / "folder"),
             llama_pair.target,  # a real model folder: it loads when not hosted
             "assets/models/tiny-code/./", str(models.MODELS_DIR / "tiny-code"), "../../../../etc/passwd",
             "no-such-model", "OtherOrg/Some-Model"]
    messages = set()
    for name in names:
        with pytest.raises(PlaygroundError) as caught:
            models.load(name)
        messages.add(str(caught.value).replace(repr(name), "NAME"))
    assert messages == {"cannot load model NAME: this playground is public (hosted mode) and loads only the shipped "
                        f"models ({', '.join(models.shipped_models())}) and the allowed Hub models "
                        "(SomeOrg/Some-Model)"}
    monkeypatch.setenv(hosted.PUBLIC_ENV, "0")
    assert models.load(llama_pair.target).name == str(Path(llama_pair.target).resolve())


def test_an_allowed_hub_id_is_one_model_however_it_is_cased(public):
    for spelling in ("SomeOrg/Some-Model", "someorg/some-model", " SOMEORG/SOME-MODEL\n"):
        assert models.canonical(spelling) == "SomeOrg/Some-Model"
    with pytest.raises(PlaygroundError, match="the Hugging Face Hub cannot be reached"):  # the tests run offline
        models.load("someorg/some-model")


def test_twenty_spellings_load_one_model_or_none(public, shipped_pair, fresh_cache, monkeypatch):
    monkeypatch.chdir(ROOT)
    loaded = models.load("tiny-code")
    spellings = [" tiny-code", "tiny-code ", "\ttiny-code\n"] + [
        "assets/models/tiny-code" + "/." * i + "/" * (i % 3) for i in range(1, 15)] + [
        "./assets/models/tiny-code", str(models.MODELS_DIR / "tiny-code-draft" / ".." / "tiny-code"),
        "assets/models/../models/tiny-code"]
    assert len(spellings) == 20
    for spelling in spellings:
        try:
            assert models.load(spelling) is loaded, spelling
        except PlaygroundError as exc:
            assert "hosted mode" in str(exc), spelling
    assert models.loaded_names() == ["tiny-code"]


def test_the_model_cache_keeps_the_most_recently_used(llama_pair, gpt2_pair, fresh_cache, monkeypatch):
    monkeypatch.setenv(hosted.MAX_MODELS_ENV, "2")
    first = models.load(llama_pair.target)
    second = models.load(llama_pair.draft)
    assert models.load(llama_pair.target) is first  # now the most recently used
    evicted = weakref.ref(second.model)
    del second
    third = models.load(gpt2_pair.target)
    assert models.loaded_names() == [first.name, third.name]
    gc.collect()
    assert evicted() is None, "the evicted model is still held somewhere: its memory was not freed"
    assert models.load(llama_pair.target) is first


def test_hosted_mode_bounds_the_model_cache_by_default(public, monkeypatch):
    assert hosted.max_models() == hosted.MAX_MODELS
    monkeypatch.setenv(hosted.MAX_MODELS_ENV, "3")
    assert hosted.max_models() == 3
    monkeypatch.setenv(hosted.MAX_MODELS_ENV, "0")
    with pytest.raises(PlaygroundError, match="PLAYGROUND_MAX_MODELS must be a whole number of at least 1"):
        hosted.max_models()
    monkeypatch.setenv(hosted.PUBLIC_ENV, "0")
    monkeypatch.delenv(hosted.MAX_MODELS_ENV)
    assert hosted.max_models() is None  # a local user's models stay loaded, as before


# ------------------------------------------------------------ sizes: one line naming the setting, value and limit


OVER = [  # (method, request fields, setting, value asked, hosted limit)
    ("autoregressive", {"max_new_tokens": 257}, "max_new_tokens", 257, 256),
    ("autoregressive", {"prompt": "x" * 2001}, "prompt characters", 2001, 2000),
    ("speculative", {"params": {"gamma": 17}}, "gamma", 17, 16),
    ("tree_speculative", {"params": {"nodes": 65}}, "nodes", 65, 64),
    ("tree_speculative", {"params": {"nodes": 256, "depth": 32, "topk": 16}}, "nodes", 256, 64),  # the issue's
    ("tree_speculative", {"params": {"depth": 9}}, "depth", 9, 8),
    ("tree_speculative", {"params": {"topk": 5}}, "topk", 5, 4),
    ("tree_speculative", {"params": {"tree": "static", "branching": "4,4,4"}}, "nodes", 84, 64),
    ("tree_speculative", {"params": {"tree": "static", "branching": "1,1,1,1,1,1,1,1,1"}}, "depth", 9, 8),
    ("eagle", {"params": {"nodes": 512}}, "nodes", 512, 64),
    ("token_recycling", {"params": {"nodes": 256}}, "nodes", 256, 64),
    ("token_recycling", {"params": {"k": 16}}, "k", 16, 8),
    ("copyspec", {"params": {"gamma": 32}}, "gamma", 32, 16),
    ("diffusion", {"params": {"candidates": 64, "strategy": "freedave"}}, "candidates", 64, 2),
    ("diffusion", {"params": {"steps": 2048, "strategy": "fixed_steps"}}, "steps", 2048, 256),
    ("diffusion", {"params": {"block": 2048}}, "block", 2048, 256),
    ("dag", {"params": {"beam": 32, "strategy": "beam"}}, "beam", 32, 8),
]


@pytest.mark.parametrize(("method", "fields", "name", "value", "bound"), OVER,
                         ids=[f"{m}-{n}-{v}" for m, _, n, v, _ in OVER])
def test_a_request_over_a_hosted_limit_is_one_line(public, method, fields, name, value, bound):
    request = Request(**{"prompt": "x = 1", "model": "tiny-code", "method": method, **fields})
    with pytest.raises(PlaygroundError) as caught:
        prepare(request)
    assert str(caught.value) == (f"{name} {value} is over the hosted limit of {bound} (this playground is public: "
                                 "each request is kept small)")


def test_every_methods_defaults_are_within_the_hosted_limits(public):
    from playground.methods import METHODS
    for method in METHODS.values():  # a visitor who changes nothing is never refused
        hosted.check_params(hosted.lowered_defaults(method.parse_params({}), set()))
    freedave = Request(prompt="x = 1", model="tiny-code", method="diffusion", params={"strategy": "freedave"})
    with pytest.raises(PlaygroundError, match="needs a masked-diffusion model"):  # past the limits: to the model
        prepare(freedave)
    assert hosted.lowered_defaults({"candidates": 4, "gamma": 4}, set()) == {"candidates": 2, "gamma": 4}
    with pytest.raises(PlaygroundError, match="^candidates 4 is over the hosted limit of 2 "):
        prepare(replace(freedave, params={"strategy": "freedave", "candidates": 4}))  # asked for: refused


def test_a_request_at_every_limit_runs(public, shipped_pair):
    prepared = prepare(Request(prompt="def f(x):\n", model="tiny-code", draft="tiny-code-draft",
                               method="tree_speculative", max_new_tokens=256,
                               params={"nodes": 64, "depth": 8, "topk": 4, "min_path": 0}))
    assert (prepared.cfg.max_new_tokens, prepared.params["nodes"]) == (256, 64)


def test_over_the_limits_runs_when_not_hosted(shipped_pair, monkeypatch):
    monkeypatch.setenv(hosted.PUBLIC_ENV, "0")
    prepared = prepare(Request(prompt="def f(x):\n", model="tiny-code", draft="tiny-code-draft",
                               method="tree_speculative", max_new_tokens=300, params={"nodes": 65}))
    assert prepared.params["nodes"] == 65
    assert len(compare_diffusion.parse_thresholds("0.1, 0.2, 0.3, 0.4, 0.5, 0.6")) == 6


def test_the_diffusion_curve_takes_at_most_its_hosted_thresholds(public):
    assert compare_diffusion.parse_thresholds("0.5, 0.9, 0.99") == [0.5, 0.9, 0.99]
    thousand = ", ".join(f"{i / 1000:g}" for i in range(1, 1001))  # the 1,000 thresholds
    with pytest.raises(PlaygroundError, match=r"^curve thresholds 1000 is over the hosted limit of 3 "):
        compare_diffusion.parse_thresholds(thousand)


def test_a_run_storing_more_than_its_hosted_bytes_stops_there(public, shipped_pair, tmp_path, monkeypatch):
    monkeypatch.setitem(hosted.LIMITS, "stored MB per run", 0.002)  # 2,000 bytes: a few steps
    recorder = Recorder(tmp_path / "runs.db")
    events = recorder.record(generate(Request(prompt="def f(x):\n", model="tiny-code", max_new_tokens=200,
                                              stop_at_eos=False)))
    with pytest.raises(PlaygroundError, match=r"^stored MB per run 0\.00\d+ is over the hosted limit of 0.002 "):
        for _ in events:
            pass
    (run,) = recorder.runs()
    assert run["status"] == "cancelled" and 0 < run["new_tokens"] < 200
    assert recorder.export(run["id"])["steps"]


# ------------------------------------------------------------ History: each visitor's own, and the gallery


def record(recorder: Recorder, prompt: str) -> int:
    events = list(recorder.record(generate(Request(prompt=prompt, model="tiny-code", max_new_tokens=4))))
    return next(e.run_id for e in events if isinstance(e, RunStarted))


def test_a_second_visitor_neither_sees_nor_replays_the_first_visitors_run(shipped_pair, tmp_path):
    shared = Recorder(tmp_path / "runs.db")
    a, b = shared.visitor("visitor-a"), shared.visitor("visitor-b")
    secret = record(a, SECRET)
    assert [r["id"] for r in a.runs()] == [secret]
    assert a.replay(secret)[0].prompt == SECRET
    assert b.runs() == [] and b.gallery() == []
    with pytest.raises(PlaygroundError) as hidden:
        b.replay(secret)
    with pytest.raises(PlaygroundError) as missing:
        b.replay(secret + 1)
    assert str(hidden.value).replace(f"no run {secret} ", "no run N ") == \
        str(missing.value).replace(f"no run {secret + 1} ", "no run N ")
    assert "sk-visitor" not in str(hidden.value)
    with pytest.raises(PlaygroundError, match="no run"):
        b.export(secret)
    with pytest.raises(PlaygroundError, match="no run"):
        b.publish(secret)  # nobody publishes someone else's run
    assert [r["id"] for r in shared.runs()] == [secret]  # not hosted: one History for everyone, as before


def test_a_published_run_is_in_everyones_gallery(shipped_pair, tmp_path):
    shared = Recorder(tmp_path / "runs.db")
    a, b = shared.visitor("visitor-a"), shared.visitor("visitor-b")
    secret, kept = record(a, SECRET), record(a, "def kept():\n")
    a.publish(secret)
    assert [r["id"] for r in b.gallery()] == [secret] and b.gallery()[0]["published"]
    assert b.replay(secret)[0].prompt == SECRET
    assert b.runs() == []  # the gallery is not their History
    with pytest.raises(PlaygroundError, match="no run"):
        b.replay(kept)  # the visitor's other runs stay private


def test_runs_stored_before_hosted_mode_are_nobodys(tmp_path):
    db = tmp_path / "recorded-v1.db"
    shutil.copyfile(ROOT / "tests" / "data" / "recorded-v1.db", db)
    shared = Recorder(db, create=False)
    old = [r["id"] for r in shared.runs()]
    assert old and not any(r["published"] for r in shared.runs())
    visitor = shared.visitor("visitor-a")
    assert visitor.runs() == [] and visitor.gallery() == []
    with pytest.raises(PlaygroundError, match="no run"):
        visitor.replay(old[0])
    assert shared.replay(old[0])[0].run_id == old[0]


def test_the_apps_history_is_the_visitors_own(shipped_pair, tmp_path, monkeypatch):
    """The History tab's handlers, as two browsers call them: a token each (kept across reloads), their own runs."""
    pytest.importorskip("gradio")
    from playground.app.history import Replays
    from playground.app.visitors import Visitors
    monkeypatch.setattr("gradio.Info", lambda *a, **k: None)
    monkeypatch.setattr("gradio.Warning", lambda *a, **k: None)
    visitors = Visitors(Recorder(tmp_path / "runs.db"), private=True)
    first, second = SimpleNamespace(session_hash="session-1"), SimpleNamespace(session_hash="session-2")
    token = visitors.arrive(None, first)
    assert visitors.arrive(None, second) != token
    secret = record(visitors.recorder(first), SECRET)
    replays = Replays(visitors)
    mine, gallery, picks = replays.history(first)
    assert [row[0] for row in mine] == [secret] and gallery == []
    theirs, gallery, picks = replays.history(second)
    assert theirs == [] and gallery == [] and picks["choices"] == []
    assert replays.load(secret, second)[0] is None  # refused: nothing to replay
    reloaded = SimpleNamespace(session_hash="session-3")  # the first browser, reloaded: a new session, same token
    assert visitors.arrive(token, reloaded) == token
    assert [row[0] for row in replays.history(reloaded)[0]] == [secret]
    replays.publish(secret, first)
    theirs, gallery, picks = replays.history(second)
    assert theirs == [] and [row[0] for row in gallery] == [secret]
    assert replays.load(secret, second)[0][0].prompt == SECRET


def test_not_hosted_the_apps_history_is_shared(shipped_pair, tmp_path):
    pytest.importorskip("gradio")
    from playground.app.history import Replays
    from playground.app.visitors import Visitors
    visitors = Visitors(Recorder(tmp_path / "runs.db"), private=False)
    first, second = SimpleNamespace(session_hash="session-1"), SimpleNamespace(session_hash="session-2")
    run = record(visitors.recorder(first), "def shared():\n")
    assert [row[0] for row in Replays(visitors).history(second)[0]] == [run]


def test_the_environment_of_this_test_run_is_not_hosted():
    """Every other test runs the playground as a local user does: hosted mode must be asked for."""
    assert not os.environ.get(hosted.SPACE_ENV) and not hosted.active()
