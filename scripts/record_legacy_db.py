"""Record tests/data/recorded-v1.db, one short run of each view family, and what the views drew of it.

    python scripts/record_legacy_db.py                  # both files; refuses to replace an existing database
    python scripts/record_legacy_db.py --expected-only  # only the expectation, from the database as it is

The database stands for those users recorded with the code of 2026-12 (tests/test_recorded_db.py replays it): it is
recorded once, with that code, and never again. Runs are stored as `python -m playground generate --db` stores them
(playground/cli.py cmd_generate): engine.generate's events through Recorder.record. The expectation is rendered by
the test's own functions, twice, from a copy (opening a database writes to it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_recorded_db import DAG, DB, EXPECTED, digest, replayed  # noqa: E402

from playground.engine import Request, generate  # noqa: E402
from playground.storage.recorder import Recorder  # noqa: E402
from playground.views.run import RunView  # noqa: E402

CODE = ("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b"
        "\n\n\ndef div(a, b):\n")
NUMBER = "deux mille cinq cents"
# (method, model, draft, params, sampling): short, and drafts accept some tokens on the repeating prompt
RUNS = [
    ("autoregressive", "tiny-code", None, {}, {}),
    ("speculative", "tiny-code", "tiny-code-draft", {}, {}),
    ("self_speculative", "tiny-code", None, {}, {}),
    ("prompt_lookup", "tiny-code", None, {}, {}),
    ("copyspec", "tiny-code", None, {}, {}),
    ("tree_speculative", "tiny-code", "tiny-code-draft", {"tree": "dynamic"}, {}),
    ("token_recycling", "tiny-code", None, {}, {}),
    ("diffusion", "tiny-code-diffusion", None, {"strategy": "threshold"}, {}),
    ("dag", "tiny-numbers-dat", None, {}, {}),
    ("gad", "tiny-numbers-ar", None, {}, {}),  # its default draft: tiny-numbers-dat-kd
    ("speculative", "tiny-code", "tiny-code-draft", {}, {"temperature": 0.8, "seed": 1234}),
]
MAX_NEW_TOKENS = 14


def record(path: Path) -> None:
    recorder = Recorder(path)
    for method, model, draft, params, sampling in RUNS:
        prompt = NUMBER if "numbers" in model else CODE
        req = Request(prompt=prompt, model=model, method=method, draft=draft, max_new_tokens=MAX_NEW_TOKENS,
                      params=params, **sampling)
        *_, ev = recorder.record(generate(req))  # every event, as the CLI consumes them; the last is RunFinished
        print(f"run {ev.run_id}: {method} on {model}: {ev.status}, {ev.stats.new_tokens} tokens in "
              f"{ev.stats.target_forwards} target forwards: {ev.text!r}")
        assert ev.status == "finished", ev.error
    recorder.engine.dispose()  # the last connection closed: the WAL is folded into the file
    with recorder.engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")
    recorder.engine.dispose()


def expectation(path: Path) -> dict:
    """What the views draw of every stored run, at every step (see tests/test_recorded_db.py), rendered twice: a
    part that differs between two renderings could not be checked, and fails here."""
    names = [*RunView._fields, DAG]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        recorder = Recorder(copy, create=False)
        runs = []
        for row in sorted(recorder.runs(), key=lambda r: r["id"]):
            finished, drawn = replayed(recorder, row["id"], names)
            assert replayed(recorder, row["id"], names)[1] == drawn, f"run {row['id']} renders differently twice"
            runs.append({"run_id": row["id"], "method": row["method"], "model": row["model"], "draft": row["draft"],
                         "text": finished.text, "token_ids": finished.token_ids,
                         "steps": [{name: digest(text) for name, text in parts.items()} for parts in drawn],
                         "final": drawn[-1]})
        recorder.engine.dispose()
    return {"parts": names, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected-only", action="store_true", help="keep the database, render the expectation")
    args = parser.parse_args()
    if not args.expected_only:
        if DB.exists():
            print(f"{DB} exists: it is recorded once, by the code of its time; delete it yourself to redo it")
            return 2
        DB.parent.mkdir(parents=True, exist_ok=True)
        record(DB)
    EXPECTED.write_text(json.dumps(expectation(DB), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{DB}: {DB.stat().st_size:,} bytes; {EXPECTED}: {EXPECTED.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
