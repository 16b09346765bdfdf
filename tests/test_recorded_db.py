"""A run database recorded by the code of 2026-12 must replay step for step after any refactor of events, recorder
or views.

tests/data/recorded-v1.db holds one short run of every view family (autoregressive, speculative greedy and sampled,
self_speculative, prompt_lookup, copyspec, tree_speculative, token_recycling, diffusion, dag, gad), written by
scripts/record_legacy_db.py through Recorder and engine.generate as `python -m playground generate --db` writes.
tests/data/recorded-v1.expected.json holds what the History tab drew of each run with that code: for every step k,
a sha256 of each part of `run_view(started, steps[:k], finished, total)` (named by RunView field) and of the DAG
graph app.py's run_panel draws beside them (part "dag", for dag and gad runs), the output text and token ids, and the
last step's parts in full, for reading a difference. Never re-record the database to make this test pass: it
stands for the databases users already have. Where a view is meant to change, regenerate only the expectation
(`scripts/record_legacy_db.py --expected-only`) and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from playground.storage.recorder import Recorder
from playground.views.dag import dag_html
from playground.views.run import run_view

DATA = Path(__file__).resolve().parent / "data"
DB = DATA / "recorded-v1.db"
EXPECTED = DATA / "recorded-v1.expected.json"
DAG = "dag"  # not a RunView field: app.py run_panel draws dag_html beside run_view's parts


def part_text(value) -> str | None:
    """A view part as text: HTML as it is, a Plotly figure as its JSON with sorted keys (the same figure built in
    another order reads the same), None where the view does not apply."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(json.loads(value.to_json(engine="json")), sort_keys=True, separators=(",", ":"))


def digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def replayed(recorder: Recorder, run_id: int, names: list[str]):
    """The run's RunFinished, and its parts `names` as text after each step k = 1..n, as the History tab draws
    them (app.py: load, then show at every position of the slider)."""
    started, steps, finished = recorder.replay(run_id)
    drawn = []
    for k in range(1, len(steps) + 1):
        view = run_view(started, steps[:k], finished, total=len(steps))
        drawn.append({name: part_text(dag_html(started, steps[:k]) if name == DAG else getattr(view, name))
                      for name in names})
    return finished, drawn


def test_recorded_database_replays_as_it_was_drawn(tmp_path):
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    db = tmp_path / DB.name
    shutil.copyfile(DB, db)  # opening it writes (WAL, migrations): never the fixture itself
    recorder = Recorder(db, create=False)
    assert sorted(r["id"] for r in recorder.runs()) == [run["run_id"] for run in expected["runs"]]
    for run in expected["runs"]:
        finished, drawn = replayed(recorder, run["run_id"], expected["parts"])
        label = f"run {run['run_id']} ({run['method']})"
        assert (finished.text, finished.token_ids) == (run["text"], run["token_ids"]), label
        assert len(drawn) == len(run["steps"]), label
        for k, (parts, hashes) in enumerate(zip(drawn, run["steps"]), start=1):
            differ = [name for name, text in parts.items() if digest(text) != hashes[name]]
            assert not differ, f"{label} at step {k} of {len(drawn)}: {differ} differ"
        assert drawn[-1] == run["final"], label  # the same as the hashes say, shown as a readable difference
