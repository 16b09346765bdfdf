"""Every `python -m playground...` command the docs, the model cards and the code's own messages name still exists:
the module runs with --help, and the subcommand written after it is one of its commands (issue 21 moved the
modules; a renamed command must not leave a reader with a ModuleNotFoundError)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHERE = ["README.md", "docs/*.md", "assets/models/*/README.md", "playground/**/*.py", "scripts/*", "Dockerfile"]
COMMAND = re.compile(r"python -m (playground(?:\.\w+)*)(?: ([a-z][a-z0-9-]*))?")


def mentioned() -> dict[str, set[str]]:
    """Module -> the words written after it that are subcommands (a word after the module that is not an option)."""
    found: dict[str, set[str]] = {}
    for pattern in WHERE:
        for path in ROOT.glob(pattern):
            if path.is_file():
                for module, word in COMMAND.findall(path.read_text(errors="replace")):
                    found.setdefault(module, set()).update([word] if word else [])
    return found


def test_every_documented_command_runs_and_has_its_subcommands():
    commands = mentioned()
    assert {"playground", "playground.training.train"} <= set(commands)  # the search itself works
    for module, words in sorted(commands.items()):
        run = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, f"python -m {module} --help: {run.stderr.strip().splitlines()[-1:]}"
        choices = set(re.findall(r"[\w-]+", " ".join(re.findall(r"\{([^}]*)\}", run.stdout))))
        assert words <= choices, f"python -m {module} has no {sorted(words - choices)} (it has {sorted(choices)})"
