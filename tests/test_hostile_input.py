"""Issue 25, what a hostile visitor's probe found in the command line and in model loading: each input is refused
with one clear line (exit status 2, no traceback), or, for model names, every spelling shares one loaded model.

Most cases run `playground.cli.main` in-process (the `main` fixture captures the file descriptors, so a traceback
or a multi-line message would show); arguments that are not UTF-8 need a real process.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from conftest import PROMPTS, ROOT, one_error_line

from playground.errors import PlaygroundError
from playground.methods import METHODS
from playground.models import loading as models
from playground.storage.recorder import Recorder

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def generate_args(pair, db, *extra) -> list:
    return ["generate", "--model", pair.target, "--prompt", "x = 1", "--max-new-tokens", 4, "--db", db, *extra]


# ------------------------------------------------------------ 1. bytes that are not text


def test_a_prompt_that_is_not_utf8_as_a_process(llama_pair, db, run_cli, stored_runs):
    done = run_cli("generate", "--model", llama_pair.target, "--prompt", b"\xff\xfe", "--db", db)
    assert done.returncode == 2 and done.stdout == ""
    assert "the prompt is not valid text" in one_error_line(done.stderr)
    assert stored_runs(db) == []


def test_a_lone_surrogate_prompt_is_refused_by_the_engine(llama_pair, run_engine):
    """What the app gets from JSON's "\\ud800": the same refusal as the command line's bytes."""
    with pytest.raises(PlaygroundError, match="not valid text"):
        run_engine(prompt="def f(\ud800):", model=llama_pair.target)


@pytest.mark.parametrize("content", [PNG_HEADER, bytes(range(256)) * 4], ids=["png", "all-bytes"])
def test_a_binary_prompts_file(llama_pair, tmp_path, main, content):
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(content)
    status, out, err = main("bench", "--model", llama_pair.target, "--prompts", path)
    assert status == 2 and out == ""
    line = one_error_line(err)
    assert str(path) in line and "not a JSONL text file" in line


# ------------------------------------------------------------ 2. values accepted silently


FLOAT_PARAMS = sorted({(m.name, p.name) for m in METHODS.values() for p in m.params if isinstance(p.default, float)})


def test_nan_min_path_is_refused_by_generate(llama_pair, db, main, stored_runs):
    status, out, err = main(*generate_args(llama_pair, db, "--method", "tree_speculative", "--draft",
                                           llama_pair.draft, "--param", "min_path=NaN"))
    assert status == 2 and out == ""
    assert "parameter min_path must be a finite number" in one_error_line(err)
    assert stored_runs(db) == []


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "1e999", math.nan, math.inf])
@pytest.mark.parametrize("method, name", FLOAT_PARAMS)
def test_every_float_parameter_refuses_what_is_not_finite(method, name, raw):
    with pytest.raises(PlaygroundError, match=f"^parameter {name} must be a finite number"):
        METHODS[method].parse_params({name: raw})


def test_integer_parameters_refuse_fractions_and_take_whole_floats():
    tree = METHODS["tree_speculative"]
    with pytest.raises(PlaygroundError, match="parameter topk must be int, got 1.5"):
        tree.parse_params({"topk": 1.5})  # was silently taken as 2 by the app's number input (Gradio rounds)
    assert tree.parse_params({"topk": 2.0})["topk"] == 2  # what a number input sends for 2


def test_the_apps_whole_number_inputs_pass_fractions_on_to_be_refused(tmp_path):
    """Gradio's Number with precision 0 rounds a typed 1.5 to 2 before any handler sees it."""
    import app
    demo = app.build_app(str(tmp_path / "runs.db"))
    inputs = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) in ("top-k", "seed")]
    assert len(inputs) == 2
    for block in inputs:
        assert block.preprocess(1.5) == 1.5, block.elem_id
    with pytest.raises(PlaygroundError, match="top-k must be a whole number"):
        app.whole(1.5, "top-k")


@pytest.mark.parametrize("field", ["top_k", "seed", "max_new_tokens"])
def test_integer_sampling_options_refuse_fractions(llama_pair, run_engine, field):
    with pytest.raises(PlaygroundError, match=f"^{field} must be a whole number, got 1.5"):
        run_engine(prompt=PROMPTS[0], model=llama_pair.target, temperature=1.0, **{field: 1.5})


@pytest.mark.parametrize("option", ["--limit", "--repeats", "--threads"])
def test_bench_counts_must_be_at_least_one(llama_pair, tmp_path, main, option):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": PROMPTS[0]}) + "\n")
    status, out, err = main("bench", "--model", llama_pair.target, "--prompts", path, option, 0)
    assert status == 2 and out == ""
    assert f"{option} must be at least 1, got 0" in one_error_line(err)


@pytest.mark.parametrize("record, words", [
    ({"prompt": 5}, "'prompt' must be a string, got 5"),
    ({"prompt": ["x"]}, "'prompt' must be a string"),
    ({"prompt": "x", "answer": 3}, "'answer' must be a string"),
    ({"prompt": "x", "references": "one"}, "'references' must be a non-empty list of strings"),
    ({"prompt": "x", "number": "12"}, "'number' must be a whole number"),
], ids=["prompt-number", "prompt-list", "answer", "references", "number"])
def test_prompt_records_of_the_wrong_type_name_file_and_line(llama_pair, tmp_path, main, record, words):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": PROMPTS[0]}) + "\n" + json.dumps(record) + "\n")
    status, out, err = main("bench", "--model", llama_pair.target, "--prompts", path)
    assert status == 2 and out == ""
    assert f"{path}:2: {words}" in one_error_line(err)


@pytest.mark.parametrize("args,words", [
    (["generate", "--prompt", "x", "--max-new-tokens", "abc"], "argument --max-new-tokens: invalid int value: 'abc'"),
    (["nosuch"], "invalid choice: 'nosuch'"), (["export", "one"], "argument run_id: invalid int value: 'one'"),
    (["bench", "--prompts", "complete", "--limit", "1.5"], "argument --limit: invalid int value: '1.5'")])
def test_a_malformed_argument_is_one_line(run_cli, args, words):
    """argparse's own refusals read like every other one: one 'error:' line, no usage block (issue 25)."""
    done = run_cli(*args)
    assert done.returncode == 2 and done.stdout == "" and words in one_error_line(done.stderr)


def test_output_into_a_closed_pipe_stops_quietly():
    """`python -m playground methods | head -1`: head stops reading; the command ends without a traceback."""
    done = subprocess.run(f"{shlex.quote(sys.executable)} -m playground methods | head -1", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("autoregressive") and done.stderr == ""


# ------------------------------------------------------------ 3. reading commands create nothing


def test_export_from_a_missing_database_creates_nothing(tmp_path, main):
    missing = tmp_path / "missing" / "dir" / "x.db"
    status, out, err = main("export", 1, "--db", missing)
    assert status == 2 and out == ""
    assert f"no run database at {str(missing)!r}" in one_error_line(err)
    assert list(tmp_path.iterdir()) == [], "export made a folder or a database"


def test_export_without_db_creates_no_default_database(tmp_path, main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLAYGROUND_DB", raising=False)
    status, _, err = main("export", 1)
    assert status == 2 and "no run database at 'playground.db'" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_file_that_is_no_run_database(tmp_path, main):
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    status, _, err = main("export", 1, "--db", other)
    assert status == 2 and "not a run database" in one_error_line(err)


# ------------------------------------------------------------ locked or damaged databases


def test_export_leaves_a_file_that_is_no_run_database_as_it_was(tmp_path, main):
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    before = other.read_bytes()
    status, _, err = main("export", 1, "--db", other)
    assert status == 2 and "not a run database" in one_error_line(err)
    assert other.read_bytes() == before, "export changed someone else's SQLite file (its journal mode)"
    assert [p.name for p in tmp_path.iterdir()] == ["other.db"], "export left -wal / -shm files beside it"


DAMAGED_STEPS = [("{not json", "not valid JSON"), ("[]", "not a JSON object"), ("null", "not a JSON object"),
                 ('{"v": 2}', "damaged"), ('{"index": 0, "tokens": 5, "sources": [], "p": [], "q": []}',
                                           "tokens is not a list"),
                 ('{"index": 0, "tokens": ["a"], "sources": [], "p": [], "q": []}', "not an integer"),
                 ('{"v": 2, "index": 0, "tokens": [1], "sources": [], "p": [], "q": [], "tree": 7}', "damaged")]


@pytest.mark.parametrize("payload,words", DAMAGED_STEPS)
def test_a_damaged_step_row_is_one_line(llama_pair, db, main, payload, words):
    """The database is untrusted input too: a step row changed outside the playground is one line on replay."""
    assert main(*generate_args(llama_pair, db))[0] == 0
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE steps SET payload = ? WHERE id = (SELECT min(id) FROM steps)", (payload,))
        conn.commit()
    status, out, err = main("export", 1, "--db", db)
    assert status == 2 and out == "" and words in one_error_line(err)
    with pytest.raises(PlaygroundError, match=words):
        Recorder(db, create=False).replay(1)


# A damaged, locked, read-only or full database under `generate`, `export`, `gallery` and `prune`, and the app's
# tabs on one: tests/test_degraded_db.py, tests/test_degraded_app.py, tests/test_interrupted_runs.py.


# ------------------------------------------------------------ 4. one loaded model per model, however spelled


def test_spellings_of_a_local_model_folder_share_one_model(llama_pair, monkeypatch):
    target = Path(llama_pair.target)
    loaded = models.load(str(target))
    monkeypatch.chdir(target.parent)
    for spelling in (f"{target}/./././", f"{target}//", f"{target}/../{target.name}", f"./{target.name}/",
                     target.name):
        assert models.load(spelling) is loaded, spelling
    assert loaded.name == str(target.resolve())


def test_a_path_to_a_shipped_model_is_the_shipped_model(shipped_pair, monkeypatch):
    monkeypatch.chdir(ROOT)
    loaded = models.load("tiny-code")
    for spelling in ("assets/models/tiny-code/./././", "assets/models/tiny-code/", str(models.MODELS_DIR /
                     "tiny-code-draft" / ".." / "tiny-code")):
        assert models.load(spelling) is loaded, spelling
    assert loaded.name == "tiny-code"


# ------------------------------------------------------------ 5. no file-existence oracle


def test_what_is_not_a_model_folder_gets_one_message_whatever_is_there(tmp_path):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0:root:/root:/bin/bash\n")
    an_empty_folder = tmp_path / "folder"
    an_empty_folder.mkdir()
    names = [str(a_file), str(tmp_path / "missing"), str(an_empty_folder)]
    if os.path.isfile("/etc/passwd"):
        names.append("/etc/passwd")
    messages = set()
    for name in names:
        with pytest.raises(PlaygroundError) as caught:
            models.load(name)
        messages.add(str(caught.value).replace(repr(name), "NAME"))
    assert len(messages) == 1, messages
    message = messages.pop()
    assert "not a shipped model" in message and "nor a folder holding a model" in message
    assert "root:" not in message


def test_a_file_as_the_model_is_one_line(llama_pair, tmp_path, db, main):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0:root:/root:/bin/bash\n")
    status, out, err = main(*generate_args(llama_pair, db, "--model", a_file))
    assert status == 2 and out == ""
    assert f"cannot load model {str(a_file)!r}: it is not a shipped model" in one_error_line(err)
