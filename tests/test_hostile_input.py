"""Issue 25, what a hostile visitor's probe found in the command line and in model loading: each input is refused
with one clear line (exit status 2, no traceback), or, for model names, every spelling shares one loaded model.

Most cases run `playground.cli.main` in-process (the `main` fixture captures the file descriptors, so a traceback
or a multi-line message would show); arguments that are not UTF-8 need a real process.
"""

from __future__ import annotations

import pytest
from conftest import one_error_line

from playground.errors import PlaygroundError

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
