"""The larger training corpus: the standard library plus the pure-Python sources of pinned, permissively licensed
PyPI packages.

    python -m playground.training.train corpus      # download the wheels, check licences, tokenize -> .cache/

Each package is fetched as its wheel with `pip download` at the version pinned below, and its licence is read from
the wheel's own metadata and checked against the licence recorded here: a package whose metadata names another
licence stops the build. Only `.py` files are read; none is copied into the repository (wheels and token caches live
under `.cache/`, git-ignored). Files are split into train and held-out by a stable hash of `package/path`, as
`playground.data.stdlib` splits the standard library, so no held-out file is ever trained on; a file whose exact text
already came earlier (vendored copies) is kept once.

The token cache is uint16 (4096-token vocabulary): about 2 bytes a token, and `pack` writes it xz-compressed for a
machine the corpus has to travel to.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import numpy as np
from tqdm import tqdm

from playground.data import stdlib as data


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str  # SPDX id of the licence this project checked; the wheel's metadata must agree


# Mature, widely read pure-Python code bases under permissive licences. Left out on purpose: packages whose .py files
# are mostly generated tables (plotly's validators, sympy's and babel's data), copyleft or MPL licences (tqdm,
# certifi, hypothesis) and tools that vendor whole other packages (pip, setuptools).
PACKAGES = (
    Package("django", "5.2.19", "BSD-3-Clause"), Package("twisted", "26.10.0", "MIT"),
    Package("networkx", "3.6.1", "BSD-3-Clause"), Package("sqlalchemy", "2.1.9", "MIT"),
    Package("pygments", "2.21.0", "BSD-2-Clause"), Package("pytest", "9.2.0", "MIT"),
    Package("alembic", "1.20.1", "MIT"), Package("mako", "1.4.3", "MIT"), Package("jinja2", "3.1.6", "BSD-3-Clause"),
    Package("flask", "3.1.3", "BSD-3-Clause"), Package("werkzeug", "3.1.9", "BSD-3-Clause"),
    Package("click", "8.5.1", "BSD-3-Clause"), Package("requests", "2.34.2", "Apache-2.0"),
    Package("urllib3", "2.8.0", "MIT"), Package("idna", "3.20", "BSD-3-Clause"),
    Package("httpx", "0.29.0", "BSD-3-Clause"), Package("httpcore", "1.0.9", "BSD-3-Clause"),
    Package("h11", "0.16.0", "MIT"), Package("anyio", "4.16.0", "MIT"), Package("starlette", "1.10.0", "BSD-3-Clause"),
    Package("fastapi", "0.165.0", "MIT"), Package("pydantic", "2.14.4", "MIT"), Package("typer", "0.29.2", "MIT"),
    Package("rich", "15.0.0", "MIT"), Package("attrs", "26.1.0", "MIT"), Package("pyparsing", "3.3.3", "MIT"),
    Package("more-itertools", "11.2.1", "MIT"), Package("toolz", "1.2.0", "BSD-3-Clause"),
    Package("boltons", "26.2.0", "BSD-3-Clause"), Package("six", "1.17.0", "MIT"),
    Package("pycodestyle", "2.15.0", "MIT"), Package("pyflakes", "4.1.0", "MIT"),
    Package("arrow", "1.4.0", "Apache-2.0"), Package("marshmallow", "4.4.0", "MIT"),
    Package("markdown-it-py", "4.3.0", "MIT"), Package("tomlkit", "0.14.0", "MIT"),
    Package("packaging", "26.4", "Apache-2.0 OR BSD-2-Clause"), Package("pluggy", "1.7.0", "MIT"),
    Package("optuna", "5.1.0", "MIT"), Package("narwhals", "2.29.0", "MIT"),
    Package("sacrebleu", "2.6.0", "Apache-2.0"), Package("tabulate", "0.10.0", "MIT"),
)
# The licence families accepted, as each shows in wheel metadata (an SPDX id, a License line or a trove classifier).
FAMILIES = ("MIT", "BSD", "Apache")
CORPUS_DIR = data.CACHE_DIR / "corpus"


def wheel_of(pkg: Package) -> Path:
    """The package's wheel under .cache/corpus/wheels/, downloaded once with pip (no dependencies)."""
    folder = CORPUS_DIR / "wheels"
    stem = pkg.name.replace("-", "_").lower() + "-" + pkg.version + "-"

    def found() -> list[Path]:
        return [p for p in folder.glob("*.whl") if p.name.lower().startswith(stem)]

    if not found():
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(folder),
               f"{pkg.name}=={pkg.version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode or not found():
            raise RuntimeError(f"pip could not download {pkg.name}=={pkg.version}: {result.stderr.strip()[-300:]}")
    return found()[0]


def licence_of(wheel: zipfile.ZipFile) -> str:
    """The licence the wheel's METADATA states: License-Expression, else License, else the trove classifiers."""
    meta = Parser().parsestr(wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")))
                             .decode("utf-8", "replace"))
    stated = [meta.get("License-Expression"), *(meta.get("License") or "").splitlines()[:1],
              *(c for c in meta.get_all("Classifier") or [] if c.startswith("License ::"))]
    return " | ".join(s.strip() for s in stated if s and s.strip())


def check_licence(pkg: Package, stated: str) -> None:
    if not any(family in pkg.licence and family in stated for family in FAMILIES):
        raise RuntimeError(f"{pkg.name} {pkg.version}: its metadata says {stated!r}, not {pkg.licence}")


def package_sources(pkg: Package) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """{'train': [(path, text)], 'heldout': [...]} of the wheel's .py files, and the licence its metadata states."""
    with zipfile.ZipFile(wheel_of(pkg)) as wheel:
        stated = licence_of(wheel)
        check_licence(pkg, stated)
        out: dict[str, list[tuple[str, str]]] = {"train": [], "heldout": []}
        for name in sorted(wheel.namelist()):
            if not name.endswith(".py") or ".dist-info/" in name:
                continue
            try:
                text = wheel.read(name).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text.strip():
                out[data.split_of(f"{pkg.name}/{name}")].append((f"{pkg.name}/{name}", text))
    return out, stated


def _cache_file(tokenizer, split: str) -> Path:
    key = data.cache_key(tokenizer, [[p.name, p.version] for p in PACKAGES])
    return data.CACHE_DIR / f"corpus-{split}-{key}.npy"


def build(tokenizer) -> dict:
    """Tokenize the standard library and every package, split by file, and cache both splits; returns the manifest
    (per package: version, licence as stated, files and tokens per split)."""
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    seen: set[str] = set()
    arrays = {split: [data.token_array(tokenizer, split)] for split in ("train", "heldout")}
    manifest = {"stdlib": {split: data.token_source(tokenizer, split) for split in arrays}, "packages": []}
    for pkg in tqdm(PACKAGES, desc="corpus", file=sys.stderr):
        sources, stated = package_sources(pkg)
        row = {"name": pkg.name, "version": pkg.version, "licence": pkg.licence, "metadata_licence": stated}
        for split, files in sources.items():
            texts = []
            for _, text in files:
                digest = hashlib.sha256(text.encode()).hexdigest()
                if digest not in seen:  # a vendored copy of a file already read counts once
                    seen.add(digest)
                    texts.append(text)
            ids = [i for enc in tokenizer(texts)["input_ids"] for i in (*enc, eos)] if texts else []
            arrays[split].append(np.asarray(ids, dtype=np.uint16))
            row[f"{split}_files"], row[f"{split}_tokens"] = len(texts), len(ids)
        manifest["packages"].append(row)
    for split, parts in arrays.items():
        arr = np.concatenate(parts)
        np.save(_cache_file(tokenizer, split), arr)
        manifest[f"{split}_tokens"] = int(len(arr))
    _cache_file(tokenizer, "train").with_suffix(".json").write_text(json.dumps(manifest, indent=2))
    return manifest


def token_array(tokenizer, split: str) -> np.ndarray:
    """The corpus tokens of `split` (standard library first, then each package); built on first use."""
    path = _cache_file(tokenizer, split)
    if not path.exists():
        build(tokenizer)
    return np.load(path)


def manifest(tokenizer) -> dict | None:
    path = _cache_file(tokenizer, "train").with_suffix(".json")
    return json.loads(path.read_text()) if path.exists() else None


def pack(tokenizer, out: Path) -> Path:
    """What training on another machine reads, in one xz-compressed file: the corpus's train split, its manifest,
    and this machine's standard-library held-out tokens (the evaluation windows every model card uses; another
    Python's standard library would give other windows). `unpack` restores them under .cache/ there."""
    arrays = {"train": token_array(tokenizer, "train"), "stdlib_heldout": data.token_array(tokenizer, "heldout"),
              "manifest": np.frombuffer(json.dumps(manifest(tokenizer)).encode(), dtype=np.uint8),
              "stdlib_note": np.frombuffer(json.dumps(data.token_source(tokenizer, "heldout")).encode(), np.uint8)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    return out


def unpack(tokenizer, packed: Path) -> None:
    arrays = np.load(io.BytesIO(lzma.decompress(packed.read_bytes())))
    data.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for tokens, note, path in (("train", "manifest", _cache_file(tokenizer, "train")),
                               ("stdlib_heldout", "stdlib_note", data.cache_file(tokenizer, "heldout"))):
        np.save(path, arrays[tokens])
        path.with_suffix(".json").write_text(arrays[note].tobytes().decode())
