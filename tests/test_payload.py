"""The stored form of a step (playground/storage/payload.py): version 1 (flat, no "v") and version 2 (a sub-record per
family) both read back into today's Step; a version from a newer release is one clear error, not a traceback."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import asdict

import pytest

from playground.errors import PlaygroundError
from playground.events import (
    CANVAS,
    CHAIN,
    DAG,
    TARGET,
    TREE,
    CanvasRecord,
    DagRecord,
    RunFinished,
    RunStarted,
    Stats,
    Step,
    TreeRecord,
)
from playground.storage import payload
from playground.storage.recorder import Recorder

# A version 1 payload as the first release stored it: every field of the flat Step, the families' empty.
V1_COMMON = {"index": 3, "tokens": [5, 6], "sources": ["accepted", "replacement"], "p": [0.9, 0.4], "q": [0.8, None],
             "drafted": [5, 7], "draft_p": [0.9, 0.1], "draft_q": [0.8, 0.6], "accepted": 1, "gamma": 2,
             "gamma_reason": "", "draft_source": None, "threshold": None, "skipped": [], "layers": 0,
             "target_forwards": 1, "draft_forwards": 2, "draft_s": 0.01, "target_s": 0.02, "other_s": 0.003,
             "texts": ["a", "b"], "drafted_texts": ["a", "c"]}
V1_FAMILIES = {"tree_tokens": [], "tree_parents": [], "tree_q": [], "tree_p": [], "tree_state": [], "tree_round": [],
               "tree_texts": [], "positions": [], "canvas_guess": [], "canvas_conf": [], "canvas_texts": [],
               "margin": None, "dag_top": [], "dag_top_p": [], "dag_top_texts": [], "dag_passing": [], "dag_edges": [],
               "dag_path": []}


def v1(**family) -> dict:
    return {**V1_COMMON, **V1_FAMILIES, **family}


def test_a_flat_version_1_chain_step_reads_back_with_no_family():
    step = payload.step_from_payload(v1())
    assert step.kind == CHAIN and step.tree is None and step.canvas is None and step.dag is None
    later = {"tapped": []}  # common fields added since version 1, at their defaults
    assert {k: v for k, v in asdict(step).items() if k not in ("tree", "canvas", "dag")} == {**V1_COMMON, **later}


def test_a_flat_version_1_tree_step_reads_back_as_a_tree():
    step = payload.step_from_payload(v1(tree_tokens=[5, 7, 8], tree_parents=[-1, -1, 0], tree_q=[0.8, 0.6, 0.5],
                                        tree_p=[0.9, 0.1, None], tree_state=["accepted", "rejected", "pruned"],
                                        tree_round=[0, 0, 1], tree_texts=["a", "c", "d"]))
    assert step.kind == TREE and step.proposed == 2
    assert step.tree == TreeRecord(tokens=[5, 7, 8], parents=[-1, -1, 0], q=[0.8, 0.6, 0.5], p=[0.9, 0.1, None],
                                   states=["accepted", "rejected", "pruned"], rounds=[0, 0, 1], texts=["a", "c", "d"])
    assert step.canvas is None and step.dag is None and step.tokens == [5, 6]


def test_a_flat_version_1_canvas_step_reads_back_as_a_canvas():
    step = payload.step_from_payload(v1(positions=[2, 0], canvas_guess=[5, 9, 6], canvas_conf=[0.4, 0.2, 0.9],
                                        canvas_texts=["a", "x", "b"], margin=1.5, threshold=2.0))
    assert step.kind == CANVAS and step.threshold == 2.0
    assert step.canvas == CanvasRecord(positions=[2, 0], guess=[5, 9, 6], conf=[0.4, 0.2, 0.9],
                                       texts=["a", "x", "b"], margin=1.5)


def test_a_flat_version_1_dag_step_reads_back_as_a_graph():
    graph = dict(dag_top=[[1, 2], [5, 4], [2, 3]], dag_top_p=[[0.9, 0.1], [0.7, 0.2], [0.8, 0.1]],
                 dag_top_texts=[["<s>", "x"], ["a", "y"], ["</s>", "z"]], dag_passing=[1.0, 0.9, 1.0],
                 dag_edges=[[0, 1, 0.9], [1, 2, 1.0]], dag_path=[0, 1, 2])
    step = payload.step_from_payload(v1(**graph))
    assert step.kind == DAG
    assert asdict(step.dag) == {k.removeprefix("dag_"): v for k, v in graph.items()}


def test_version_1_fields_no_release_has_any_more_are_left_out():
    step = payload.step_from_payload({**v1(), "retired_field": 7})
    assert step.kind == CHAIN and not hasattr(step, "retired_field")


@pytest.mark.parametrize("step", [
    Step(index=0, tokens=[4], sources=[TARGET], p=[0.5], q=[None], texts=["x"], other_s=0.1),
    Step(index=1, tokens=[5, 6], sources=["accepted", "bonus"], p=[0.9, 0.4], q=[0.8, None], drafted=[5],
         accepted=1, tree=TreeRecord(tokens=[5], parents=[-1], q=[0.8], p=[0.9], states=["accepted"], rounds=[0],
                                     texts=["a"])),
    Step(index=2, tokens=[7], sources=[TARGET], p=[0.6], q=[None], threshold=3.0,
         canvas=CanvasRecord(positions=[1], guess=[3, 7], conf=[0.1, 0.6], texts=["m", "q"], margin=4.0)),
    Step(index=0, tokens=[8, 2], sources=[TARGET] * 2, p=[0.5, 0.9], q=[None, None],
         dag=DagRecord(top=[[1], [8], [2]], top_p=[[1.0], [0.5], [0.9]], top_texts=[["<s>"], ["b"], ["</s>"]],
                       passing=[1.0, 1.0, 1.0], edges=[[0, 1, 1.0], [1, 2, 1.0]], path=[0, 1, 2])),
], ids=[CHAIN, TREE, CANVAS, DAG])
def test_version_2_round_trips_through_json(step):
    stored = json.loads(json.dumps(payload.step_payload(step)))  # what SQLite's JSON column holds
    assert stored["v"] == payload.VERSION == 2
    families = [family for family in (TREE, CANVAS, DAG) if stored[family] is not None]
    assert families == ([] if step.kind == CHAIN else [step.kind])
    again = payload.step_from_payload(stored)
    assert again == step and again.kind == step.kind


def test_a_version_1_step_written_again_is_version_2_and_the_same_step():
    old = payload.step_from_payload(v1(positions=[0], canvas_guess=[5], canvas_conf=[0.4], canvas_texts=["a"]))
    assert payload.step_from_payload(payload.step_payload(old)) == old


@pytest.mark.parametrize("version", [3, 99, "2", None])
def test_an_unknown_version_is_one_clear_error(version):
    with pytest.raises(PlaygroundError, match=rf"format version {version!r}.*reads versions 1 to 2"):
        payload.step_from_payload({**payload.step_payload(Step(index=0, tokens=[], sources=[], p=[], q=[])),
                                   "v": version})


def test_a_step_is_of_at_most_one_family_and_its_time_is_the_sum_of_its_parts():
    with pytest.raises(ValueError, match="at most one"):
        Step(index=0, tokens=[], sources=[], p=[], q=[], tree=TreeRecord(), dag=DagRecord())
    step = Step(index=0, tokens=[], sources=[], p=[], q=[], draft_s=0.25, target_s=0.5, other_s=0.125)
    assert step.seconds == 0.875


def recorded(db) -> tuple[Recorder, int]:
    """A run of two hand-made steps, recorded: no model needed."""
    rec = Recorder(db)
    steps = [Step(index=i, tokens=[i], sources=[TARGET], p=[1.0], q=[None], texts=[str(i)]) for i in range(2)]
    events = [RunStarted(method="autoregressive", model="m", draft=None, prompt="p", prompt_ids=[1], settings={}),
              *steps, RunFinished(status="finished", text="01", token_ids=[0, 1], stats=Stats())]
    for _ in rec.record(events):
        pass
    return rec, events[0].run_id


def test_the_recorder_stores_version_2_and_reads_version_1_rows(db):
    rec, run_id = recorded(db)
    with closing(sqlite3.connect(db)) as conn:
        stored = [json.loads(p) for (p,) in conn.execute('SELECT payload FROM steps ORDER BY "index"')]
        assert [p["v"] for p in stored] == [2, 2]
        flat = {**v1(), "index": 1, "tokens": [1], "texts": ["1"]}  # the second step as the first release stored it
        with conn:
            conn.execute('UPDATE steps SET payload = ? WHERE "index" = 1', (json.dumps(flat),))
    _, steps, _ = rec.replay(run_id)
    assert [s.tokens for s in steps] == [[0], [1]] and steps[1].drafted == [5, 7] and steps[1].kind == CHAIN
    exported = json.loads(json.dumps(rec.export(run_id)))
    assert exported["version"] == 2 and exported["steps"][1] == asdict(steps[1])


def test_a_run_stored_by_a_newer_release_is_one_line_in_replay_and_export(db, main):
    rec, run_id = recorded(db)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE steps SET payload = json_set(payload, '$.v', 3)")
    with pytest.raises(PlaygroundError, match=f"cannot read run {run_id} of .*format version 3"):
        rec.replay(run_id)
    status, out, err = main("export", run_id, "--db", db)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: cannot read run") and len(err.strip().splitlines()) == 1
