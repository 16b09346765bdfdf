"""The stored form of a Step: the JSON payload of its row in the run database, and of each step `export` prints.

Versions (the payload's "v"; a payload without one is version 1):
- 1, the first release: one flat object, every field of every family on the step itself (tree_tokens, tree_parents,
  tree_q, tree_p, tree_state, tree_round, tree_texts; positions, canvas_guess, canvas_conf, canvas_texts, margin;
  dag_top, dag_top_p, dag_top_texts, dag_passing, dag_edges, dag_path), empty where the family does not apply.
- 2: {"v": 2, the common fields, "tree": {...} | null, "canvas": {...} | null, "dag": {...} | null}, the sub-records
  of events.TreeRecord, CanvasRecord and DagRecord under their own field names. Common fields added since, with a
  default that means "none" (so no new version): `tapped` (feature drafts, the eagle method).

Every version reads back into today's Step, so a database written by any release replays; a payload from a newer
release than this one is one PlaygroundError. Fields a version does not know are left out, fields it lacks get
their defaults. `export` writes version 2 steps without their "v": the document carries it once ("version").
"""

from __future__ import annotations

from dataclasses import asdict, fields

from playground.errors import PlaygroundError
from playground.events import CanvasRecord, DagRecord, Step, TreeRecord

VERSION = 2

# version 1's flat field of each family -> (sub-record field on Step, field in the sub-record)
V1_FIELDS = {
    "tree_tokens": ("tree", "tokens"), "tree_parents": ("tree", "parents"), "tree_q": ("tree", "q"),
    "tree_p": ("tree", "p"), "tree_state": ("tree", "states"), "tree_round": ("tree", "rounds"),
    "tree_texts": ("tree", "texts"),
    "positions": ("canvas", "positions"), "canvas_guess": ("canvas", "guess"), "canvas_conf": ("canvas", "conf"),
    "canvas_texts": ("canvas", "texts"), "margin": ("canvas", "margin"),
    "dag_top": ("dag", "top"), "dag_top_p": ("dag", "top_p"), "dag_top_texts": ("dag", "top_texts"),
    "dag_passing": ("dag", "passing"), "dag_edges": ("dag", "edges"), "dag_path": ("dag", "path"),
}
RECORDS = {"tree": TreeRecord, "canvas": CanvasRecord, "dag": DagRecord}


def step_record(step: Step) -> dict:
    """The step as JSON-ready data, without a version: what `export` lists."""
    return asdict(step)


def step_payload(step: Step) -> dict:
    """What the recorder stores for a step: the current version."""
    return {"v": VERSION, **step_record(step)}


def step_from_payload(payload: dict) -> Step:
    """A stored step, whichever version wrote it. A payload that is no step at all (changed outside the playground,
    or damaged) is one PlaygroundError, like one from a newer release: the database is untrusted input."""
    if not isinstance(payload, dict):
        raise PlaygroundError(f"a stored step is not a JSON object but {type(payload).__name__}: the database was "
                              "changed outside the playground")
    version = payload.get("v", 1)
    if version not in (1, VERSION):
        raise PlaygroundError(f"a stored step is in format version {version!r}; this playground reads versions 1 to "
                              f"{VERSION}: a newer release wrote it")
    try:
        step = _from_v2(_v1_to_v2(payload) if version == 1 else payload)
        _check_types(step)
    except (TypeError, ValueError, AttributeError) as exc:
        raise PlaygroundError(f"a stored step is damaged ({str(exc).splitlines()[0][:200]}): the database was "
                              "changed outside the playground") from None
    return step


def _check_types(step: Step) -> None:
    """The fields every view reads, of the types they read them as (a list where a list belongs, ints as tokens)."""
    if not isinstance(step.index, int) or isinstance(step.index, bool):
        raise TypeError(f"index is {step.index!r}")
    for name in ("tokens", "sources", "p", "q", "texts", "drafted"):
        if not isinstance(getattr(step, name), list):
            raise TypeError(f"{name} is not a list")
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in step.tokens + step.drafted):
        raise TypeError("a token id is not an integer")


def _v1_to_v2(flat: dict) -> dict:
    """Version 1's flat fields into their sub-records; a family whose fields are all empty has none (as version 1
    readers took it: no tree, canvas or graph)."""
    nested: dict = {name: {} for name in RECORDS}
    common = {}
    for key, value in flat.items():
        if key in V1_FIELDS:
            family, name = V1_FIELDS[key]
            nested[family][name] = value
        else:
            common[key] = value
    return {**common, **{family: values if any(v not in (None, []) for v in values.values()) else None
                         for family, values in nested.items()}}


def _from_v2(payload: dict) -> Step:
    known = {f.name for f in fields(Step)}
    values = {k: v for k, v in payload.items() if k in known and k not in RECORDS}
    for family, record in RECORDS.items():
        sub = payload.get(family)
        if sub is not None:
            names = {f.name for f in fields(record)}
            values[family] = record(**{k: v for k, v in sub.items() if k in names})
    return Step(**values)
