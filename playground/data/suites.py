"""Prompt suites for `bench` and the model cards, cut from HELD-OUT standard-library files only (never training ones).

Each suite is `assets/prompts/NAME.jsonl`, one JSON object per line with "prompt" and "category"; all but `complete`
also say "source" (the file, relative to the stdlib root) and "line", and `repeat` and `edit` name the "function".

- complete: prefixes of held-out files (`data.heldout_prompts`): plain code completion.
- repeat: a whole function, a comment asking for the same function again, and the start of its def line: the
  continuation is a copy, as in CopySpec's repeated-answer setting (MT-Redundant, arXiv 2502.08923).
- edit: a whole function, a comment naming a small change (one parameter renamed) and the start of the changed
  function's def line: mostly a copy with the edit applied, the editing setting of prompt lookup decoding.
- docstring: a def or class line (or a module's first lines) and the opening lines of a long docstring: prose.
- dependent (written by hand, not built): short programs whose next tokens depend on each other, as in
  ParallelBench: sort or reverse a list, finish a Latin square, transpose, swap; each line also
  gives the "answer" the continuation must start with. Where decoding commits many tokens at once, each chosen
  from its own marginal, this is where it should break.
- numbers (built by `python -m playground.training.train_dag prompts`): French number phrases of held-out numbers for
  the translators of the DAG demo, each with its "number" and every valid English rendering ("references").

Built by `python -m playground.training.train prompts` deterministically (files in sorted order, a fixed seed). Every
prompt stays under MAX_PROMPT_TOKENS, so prompt + 128 new tokens fits the shipped models' 1024-token context with room.
"""

from __future__ import annotations

import ast
import json
import random
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playground.data import stdlib as data
from playground.errors import PlaygroundError
from playground.models import loading as models

BUILT = ("complete", "repeat", "edit", "docstring")
SUITES = BUILT + ("dependent", "numbers")
PROMPTS_DIR = models.ASSETS / "prompts"
PER_SUITE = 20
SEED = 0
MAX_PROMPT_TOKENS = 560
MIN_FUNCTION_TOKENS = 128  # the whole 128-token continuation of a repeat prompt can be copied
DOCSTRING_LINES = 12       # a docstring at least this long is "long"
NEW_NAMES = ("value", "item", "result", "data", "obj", "text", "count", "node", "entry", "target")


def suite_path(name: str) -> Path:
    return PROMPTS_DIR / f"{name}.jsonl"


def resolve(name_or_path: str) -> Path:
    """A suite name means assets/prompts/NAME.jsonl; anything else is taken as the path of a JSONL file."""
    if name_or_path in SUITES:
        return suite_path(name_or_path)
    path = Path(name_or_path)
    if not path.exists() and len(path.parts) == 1 and not path.suffix:  # a bare word: meant as a suite name
        raise PlaygroundError(f"unknown prompt suite {name_or_path!r} (suites: {', '.join(SUITES)}; or give the "
                              "path of a JSONL file)")
    return path


@dataclass
class Found:
    """A function or docstring found in a held-out file."""
    source: str     # path relative to the stdlib root
    line: int
    node: ast.AST
    text: str       # the function's source, dedented (decorators left out); for docstrings, the prompt


def heldout_modules() -> Iterator[tuple[str, str, ast.Module]]:
    """(relative path, text, syntax tree) of every held-out file that parses."""
    root = data.stdlib_root()
    for path in data.stdlib_files("heldout"):
        text = data.read_source(path)
        try:
            tree = ast.parse(text or "")
        except (SyntaxError, ValueError):
            continue
        yield path.relative_to(root).as_posix(), text or "", tree


def functions(source: str, text: str, tree: ast.Module) -> Iterator[Found]:
    """Every function (methods and nested ones too) whose dedented source parses on its own."""
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = textwrap.dedent("".join(lines[node.lineno - 1:node.end_lineno]))
            try:  # dedent gives up when a string literal reaches column 0: such a method cannot stand alone
                ast.parse(body)
            except SyntaxError:
                continue
            yield Found(source, node.lineno, node, body)


def def_start(fn: Found) -> str:
    """The start of the function's def line, up to its opening parenthesis."""
    return f"{'async def' if isinstance(fn.node, ast.AsyncFunctionDef) else 'def'} {fn.node.name}("


def repeat_prompt(fn: Found) -> str:
    return f"{fn.text.rstrip()}\n\n\n# The same function again:\n{def_start(fn)}"


def renamable(fn: Found) -> list[str]:
    """Parameters worth renaming: not self or cls, and read at least twice in the body."""
    params = [a.arg for a in (*fn.node.args.posonlyargs, *fn.node.args.args, *fn.node.args.kwonlyargs)]
    reads = [n.id for n in ast.walk(fn.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return [p for p in params if p not in ("self", "cls") and reads.count(p) >= 2]


def free_names(fn: Found) -> list[str]:
    """Names a parameter can be renamed to without clashing with any word of the function."""
    return [w for w in NEW_NAMES if not re.search(rf"\b{w}\b", fn.text)]


def edit_prompt(fn: Found, old: str, new: str) -> str:
    return (f"{fn.text.rstrip()}\n\n\n# The same function with the parameter `{old}` renamed to `{new}`:\n"
            f"{def_start(fn)}")


def docstrings(source: str, text: str, tree: ast.Module) -> Iterator[Found]:
    """Long docstrings, each as a prompt: the def or class line(s), or the module's first lines, then the
    docstring's first lines (a third of it, at most 4), so the continuation is the rest of the prose."""
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if ast.get_docstring(node) is None:
            continue
        doc = node.body[0]
        length = doc.end_lineno - doc.lineno + 1
        if length < DOCSTRING_LINES:
            continue
        first = 0 if isinstance(node, ast.Module) else node.lineno - 1
        keep = min(4, length // 3)
        prompt = textwrap.dedent("".join(lines[first:doc.lineno - 1 + keep]))
        yield Found(source, doc.lineno, node, prompt)


def pick(candidates: list[Found], rng: random.Random, n: int) -> list[Found]:
    """Up to `n` candidates, at most one per file (for variety), in (source, line) order."""
    by_file: dict[str, list[Found]] = {}
    for c in candidates:
        by_file.setdefault(c.source, []).append(c)
    files = sorted(by_file)
    rng.shuffle(files)
    return sorted((rng.choice(by_file[f]) for f in files[:n]), key=lambda c: (c.source, c.line))


def build_suites(tokenizer, n: int = PER_SUITE, seed: int = SEED) -> dict[str, list[dict]]:
    """The records of every suite, deterministically: files in sorted order, one rng per suite."""
    def tokens(text: str) -> int:
        return len(tokenizer(text, verbose=False)["input_ids"])  # long ones are only counted

    modules = list(heldout_modules())
    fns = [f for m in modules for f in functions(*m) if 300 < len(f.text) < 3000]  # chars: skip the hopeless
    fns = [f for f in fns if tokens(f.text) >= MIN_FUNCTION_TOKENS and tokens(repeat_prompt(f)) < MAX_PROMPT_TOKENS]

    repeat = [{"category": "repeat", "prompt": repeat_prompt(f), "source": f.source, "line": f.line,
               "function": f.node.name} for f in pick(fns, random.Random(f"repeat-{seed}"), n)]

    rng = random.Random(f"edit-{seed}")
    edit = []
    for f in pick([f for f in fns if renamable(f) and free_names(f)], rng, n):
        old, new = rng.choice(renamable(f)), rng.choice(free_names(f))
        edit.append({"category": "edit", "prompt": edit_prompt(f, old, new), "source": f.source, "line": f.line,
                     "function": f.node.name, "change": f"rename parameter {old} to {new}"})

    docs = [d for m in modules for d in docstrings(*m) if tokens(d.text) < MAX_PROMPT_TOKENS]
    docstring = [{"category": "docstring", "prompt": d.text, "source": d.source, "line": d.line}
                 for d in pick(docs, random.Random(f"docstring-{seed}"), n)]

    complete = [{"category": "complete", "prompt": p} for p in data.heldout_prompts(tokenizer, n, seed=seed)]
    return {"complete": complete, "repeat": repeat, "edit": edit, "docstring": docstring}


def write_suites(tokenizer, n: int = PER_SUITE) -> None:
    PROMPTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, records in build_suites(tokenizer, n).items():
        suite_path(name).write_text("".join(json.dumps(r) + "\n" for r in records))
        print(f"wrote {len(records)} prompts to {suite_path(name)}")
