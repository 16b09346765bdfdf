"""Warming up at start (app/warm.py): every tab's default models are loaded and their default runs made once before
the app serves, so a first visitor's click pays neither; a model that is not there is skipped with a line."""

from __future__ import annotations

import io

import pytest

from playground import engine, hosted
from playground.app import warm
from playground.engine import Request
from playground.errors import PlaygroundError
from playground.models import loading


def test_every_tab_default_is_warm_before_serving(monkeypatch):
    monkeypatch.setattr(engine, "_warmed", set())
    log = io.StringIO()
    warm.warm_up_at_start(log)
    loaded = set(loading.loaded_names())
    for req in warm.start_requests():  # each default run was made, so warm_up has nothing left to do for it
        assert {req.model, req.draft} - {None} <= loaded
        assert engine.warm_up(req) is False
    assert "warmed up" in log.getvalue() and "skipped" not in log.getvalue()


def test_a_model_that_is_not_there_is_skipped_in_one_line(monkeypatch):
    monkeypatch.setattr(engine, "_warmed", set())
    monkeypatch.setattr(warm, "start_requests", lambda: [Request(prompt="x", model="no-such-model")])
    log = io.StringIO()
    warm.warm_up_at_start(log)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("warm-up: skipped autoregressive on no-such-model:") and len(lines) == 2


def test_the_queue_is_bounded_in_hosted_mode(monkeypatch):
    """Gradio tells each waiting visitor their place; hosted, at most QUEUE_MAX wait ($PLAYGROUND_QUEUE_MAX sets
    it; a bad value is one line)."""
    monkeypatch.delenv(hosted.QUEUE_ENV, raising=False)
    monkeypatch.setenv(hosted.PUBLIC_ENV, "0")
    assert hosted.queue_size() is None
    monkeypatch.setenv(hosted.PUBLIC_ENV, "1")
    assert hosted.queue_size() == hosted.QUEUE_MAX
    monkeypatch.setenv(hosted.QUEUE_ENV, "4")
    assert hosted.queue_size() == 4
    for bad in ("0", "many"):
        monkeypatch.setenv(hosted.QUEUE_ENV, bad)
        with pytest.raises(PlaygroundError, match="PLAYGROUND_QUEUE_MAX") as refused:
            hosted.queue_size()
        assert "\n" not in str(refused.value)
