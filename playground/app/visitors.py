"""Who is asking: in hosted mode every visitor's runs are private to their browser, so each handler that stores or
reads runs does it through `Visitors.recorder(request)`.

A visitor is a random token kept in their browser's local storage (gr.BrowserState), so a reload is still the same
visitor; the token is made by the server on the first visit, and the database stores only a hash of it. A client
without a browser (gradio_client) is a visitor for as long as its session lasts. Not hosted, everyone shares one
History, as before.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict

import gradio as gr

from playground.storage.degraded import Unrecorded
from playground.storage.recorder import Recorder

STORAGE_KEY = "playground-visitor"
TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
SESSIONS_KEPT = 100_000  # session -> visitor pairs remembered, the oldest forgotten first (a few MB at most)


class Visitors:
    def __init__(self, recorder: Recorder | Unrecorded, private: bool):
        self.base, self.private = recorder, private
        self.sessions: OrderedDict[str, str] = OrderedDict()  # session hash -> owner (the token's hash)

    def state(self) -> gr.BrowserState:
        """The component that keeps a visitor's token in their browser; arrive() fills it."""
        return gr.BrowserState(None, storage_key=STORAGE_KEY)

    def arrive(self, token, request: gr.Request):
        """On page load: the browser's token, a new one on its first visit (or when what it sent is not one of
        ours), remembered as this session's visitor. Returned to be kept in the browser."""
        if not self.private:
            return token
        if not isinstance(token, str) or not TOKEN.fullmatch(token):
            token = secrets.token_urlsafe(32)
        self.sessions[request.session_hash] = hashlib.sha256(token.encode()).hexdigest()
        self.sessions.move_to_end(request.session_hash)
        while len(self.sessions) > SESSIONS_KEPT:
            self.sessions.popitem(last=False)
        return token

    def owner(self, request: gr.Request | None) -> str | None:
        """The visitor asking, as stored on their runs; None when History is shared."""
        if not self.private:
            return None
        session = getattr(request, "session_hash", None) or "none"
        return self.sessions.get(session) or hashlib.sha256(f"session:{session}".encode()).hexdigest()

    def recorder(self, request: gr.Request | None) -> Recorder | Unrecorded:
        """The run database as the visitor asking sees it (hosted mode: their runs and the gallery)."""
        owner = self.owner(request)
        return self.base if owner is None else self.base.visitor(owner)
