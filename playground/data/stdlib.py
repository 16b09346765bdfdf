"""Training data: the Python standard library of the interpreter that runs this code.

Files are split into train and held-out sets by a hash of their path relative to the stdlib root, so the split is
the same on every machine with the same Python version and no file is in both. The `encodings/` codec tables are
left out (they are mostly big literal tables), and so is `site-packages/`. Nothing from the stdlib is copied into
the repository: token caches live under `.cache/` (git-ignored).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sysconfig
from pathlib import Path

import numpy as np

HELDOUT_PERCENT = 10
EXCLUDED_DIRS = {"encodings", "site-packages", "__pycache__", "lib2to3"}
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def split_of(relpath: str) -> str:
    """'heldout' for about HELDOUT_PERCENT% of files, chosen by a stable hash of the relative path."""
    bucket = int(hashlib.sha256(relpath.encode()).hexdigest(), 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def stdlib_files(split: str) -> list[Path]:
    """Sorted list of the stdlib .py files in `split` ('train' or 'heldout')."""
    root = stdlib_root()
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if EXCLUDED_DIRS.intersection(rel.parts[:-1]):
            continue
        if split_of(rel.as_posix()) == split:
            files.append(path)
    return files


def read_source(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    return text if text.strip() else None


def cache_key(tokenizer, *more) -> str:
    """A short hash of the tokenizer's vocabulary (and of `more`, JSON-serialisable) for naming cache files: keyed by
    the vocabulary itself, not its serialisation, so a cache made with another `tokenizers` version (e.g. carried to
    a GPU machine) is still found."""
    key = json.dumps(sorted(tokenizer.get_vocab().items())) + (json.dumps(more) if more else "")
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def cache_file(tokenizer, split: str) -> Path:
    return CACHE_DIR / f"tokens-{split}-{cache_key(tokenizer)}.npy"


def token_array(tokenizer, split: str) -> np.ndarray:
    """All files of `split` tokenized and joined with the end-of-text token, cached as uint16 on disk, with a note
    of which interpreter's standard library it came from."""
    cache = cache_file(tokenizer, split)
    if cache.exists():
        return np.load(cache)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    files = stdlib_files(split)
    texts = [t for t in map(read_source, files) if t]
    ids: list[int] = []
    for enc in tokenizer(texts)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    arr = np.asarray(ids, dtype=np.uint16)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, arr)
    source = {"stdlib": str(stdlib_root()), "python": platform.python_version(), "files": len(texts),
              "tokens": len(arr)}
    cache.with_suffix(".json").write_text(json.dumps(source))
    return arr


def token_source(tokenizer, split: str) -> dict:
    """Where the cached tokens of `split` came from (the interpreter that made the cache, maybe on another machine)."""
    note = cache_file(tokenizer, split).with_suffix(".json")
    if note.exists():
        return json.loads(note.read_text())
    return {"stdlib": str(stdlib_root()), "python": platform.python_version()}


def heldout_prompts(tokenizer, n: int, prompt_tokens: int = 96, seed: int = 0, split: str = "heldout") -> list[str]:
    """`n` prompts cut from the files of `split` (held-out by default): the first `prompt_tokens` tokens of a code
    region of the file."""
    rng = np.random.default_rng(seed)
    files = [f for f in stdlib_files(split) if (read_source(f) or "").count("\n") > 40]
    picks = rng.choice(len(files), size=min(n, len(files)), replace=False)
    prompts = []
    for i in sorted(picks):
        text = read_source(files[i]) or ""
        lines = text.splitlines(keepends=True)
        start = int(rng.integers(0, max(1, len(lines) - 40)))
        ids = tokenizer("".join(lines[start:]))["input_ids"][:prompt_tokens]
        prompts.append(tokenizer.decode(ids))
    return prompts
