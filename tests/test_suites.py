"""The prompt suites of assets/prompts: cut from held-out files only, with the fields bench and the cards read."""

from __future__ import annotations

import ast
import json
import re

import pytest
from conftest import TOKENIZER_DIR

from playground.data import stdlib as data
from playground.data import suites
from playground.errors import PlaygroundError

CONTEXT, NEW_TOKENS = 1024, 128  # the shipped models' context; bench's default new tokens


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in suites.suite_path(name).read_text().splitlines()]


def body_and_ask(record: dict) -> tuple[ast.FunctionDef, str]:
    """The function a repeat or edit prompt shows, and the comment line asking for it (the prompt's last two lines
    are the comment and the start of the def line)."""
    body, ask, start = record["prompt"].rsplit("\n", 2)
    tree = ast.parse(body)
    assert len(tree.body) == 1 and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef))
    assert start.endswith(f"def {record['function']}(") and ask.startswith("# ")
    return tree.body[0], ask


@pytest.mark.parametrize("name", suites.BUILT)
def test_every_suite_has_its_category_and_prompts(name):
    rows = records(name)
    assert len(rows) == suites.PER_SUITE
    assert all(r["category"] == name and isinstance(r["prompt"], str) and r["prompt"].strip() for r in rows)
    assert len({r["prompt"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name", suites.BUILT[1:])  # complete keeps its original format: prompt and category
def test_suites_come_only_from_heldout_files(name):
    rows = records(name)
    for r in rows:
        assert data.split_of(r["source"]) == "heldout", r["source"]
        assert isinstance(r["line"], int) and r["line"] > 0
    assert len({r["source"] for r in rows}) == len(rows), "one prompt per file"


def test_repeat_prompts_hold_the_function_they_ask_for():
    for r in records("repeat"):
        fn, ask = body_and_ask(r)
        assert fn.name == r["function"] and "same function" in ask
        assert r["prompt"].count(f"def {r['function']}(") == 2  # shown once, asked for once


def test_edit_prompts_name_a_parameter_of_the_function_and_a_fresh_name():
    for r in records("edit"):
        fn, ask = body_and_ask(r)
        old, new = re.fullmatch(r"rename parameter (\w+) to (\w+)", r["change"]).groups()
        assert fn.name == r["function"] and f"`{old}`" in ask and f"`{new}`" in ask
        assert old in [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)]
        body = r["prompt"].rsplit("\n", 2)[0]
        assert not re.search(rf"\b{new}\b", body), "the new name must not clash with one already there"


def test_docstring_prompts_open_a_docstring_and_stop_inside_it():
    for r in records("docstring"):
        prompt = r["prompt"]
        quotes = max(prompt.count('"""'), prompt.count("'''"))
        assert quotes % 2 == 1, "the docstring is opened, not closed"
        assert len(re.findall(r"[A-Za-z]{3,}", prompt.split('"""')[-1].split("'''")[-1])) >= 3, "prose follows"


def test_prompts_leave_room_for_new_tokens_in_the_context():
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    for name in suites.SUITES:
        for r in records(name):
            n = len(tokenizer(r["prompt"])["input_ids"])
            assert n < suites.MAX_PROMPT_TOKENS and n + NEW_TOKENS < CONTEXT - 256, (name, n)


def test_a_suite_name_resolves_to_its_file_and_an_unknown_name_is_refused(tmp_path):
    assert suites.resolve("repeat") == suites.suite_path("repeat")
    path = tmp_path / "mine.jsonl"
    assert suites.resolve(str(path)) == path  # a path stays a path, even before it exists
    with pytest.raises(PlaygroundError, match="unknown prompt suite 'nonesuch'.*complete, repeat, edit, docstring"):
        suites.resolve("nonesuch")


def test_the_dependent_suite_pairs_each_prompt_with_its_answer():
    rows = records("dependent")
    assert len(rows) >= 8 and all(r["category"] == "dependent" and r["answer"].strip() for r in rows)
    for r in rows:  # each prompt and its answer start a valid Python statement: the answers are right
        whole = r["prompt"] + r["answer"]
        closing = {"[": "]", "(": ")", "{": "}"}
        stack = []
        for ch in whole.replace("#", ""):
            if ch in closing:
                stack.append(closing[ch])
            elif ch in closing.values():
                assert stack and stack.pop() == ch, whole
        program = whole + "".join(reversed(stack))
        if "assert" in program:
            exec(compile(program, "<dependent>", "exec"), {})  # the assert holds with this answer
        else:
            ast.parse(program)
