"""The training corpus (playground/corpus.py) on wheels made here: licence check, split by file, vendored copies read
once, and the packed form that travels to a GPU machine restoring exactly what was packed. No download."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from playground.data import corpus
from playground.data import stdlib as data
from playground.training.train import load_tokenizer

FILES = {
    "pkg/__init__.py": "from pkg.core import run\n",
    "pkg/core.py": "def run(x):\n    return x + 1\n",
    "pkg/_vendor/copy_of_core.py": "def run(x):\n    return x + 1\n",  # the same text as core.py: read once
    "pkg/empty.py": "   \n",
    "pkg/data.txt": "not python",
    **{f"pkg/mod{i}.py": f"VALUE_{i} = {i}\n" for i in range(60)},
}


def make_wheel(folder, licence_lines: str):
    path = folder / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pkg-1.0.dist-info/METADATA",
                       f"Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\n{licence_lines}\n")
        wheel.writestr("pkg/latin1.py", "x = 'caf\xe9'\n".encode("latin-1"))  # not UTF-8: skipped
        for name, text in FILES.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture
def wheel_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "wheel_of", lambda pkg: tmp_path / "pkg-1.0-py3-none-any.whl")
    return tmp_path


def test_sources_are_split_by_file_and_the_licence_comes_from_the_wheel(wheel_dir):
    make_wheel(wheel_dir, "License-Expression: MIT\nClassifier: License :: OSI Approved :: MIT License")
    sources, stated = corpus.package_sources(corpus.Package("pkg", "1.0", "MIT"))
    assert stated == "MIT | License :: OSI Approved :: MIT License"
    paths = {split: [p for p, _ in files] for split, files in sources.items()}
    python = {f"pkg/{n}" for n in FILES if n.endswith(".py") and FILES[n].strip()}
    assert set(paths["train"]) | set(paths["heldout"]) == python  # no data file, empty file or undecodable one
    for split, names in paths.items():
        assert all(data.split_of(name) == split for name in names)
    assert paths["train"] and paths["heldout"]  # 63 files: both splits are used


def test_a_wheel_whose_metadata_names_another_licence_stops_the_build(wheel_dir):
    make_wheel(wheel_dir, "License: GPL-3.0-or-later")
    with pytest.raises(RuntimeError, match="pkg 1.0: its metadata says 'GPL-3.0-or-later', not MIT"):
        corpus.package_sources(corpus.Package("pkg", "1.0", "MIT"))


def test_build_counts_vendored_copies_once_and_pack_restores_the_same_tokens(wheel_dir, tmp_path, monkeypatch):
    make_wheel(wheel_dir, "License-Expression: BSD-3-Clause")
    stdlib = {"train": np.arange(10, 20, dtype=np.uint16), "heldout": np.arange(30, 35, dtype=np.uint16)}
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "token_array", lambda tok, split: stdlib[split])
    monkeypatch.setattr(data, "token_source", lambda tok, split: {"python": "3.11", "tokens": len(stdlib[split])})
    monkeypatch.setattr(corpus, "PACKAGES", (corpus.Package("pkg", "1.0", "BSD-3-Clause"),))
    (tmp_path / "cache").mkdir()
    tokenizer = load_tokenizer()
    note = corpus.build(tokenizer)
    row = note["packages"][0]
    assert row["train_files"] + row["heldout_files"] == 62  # 63 Python files, one a copy of another
    train = corpus.token_array(tokenizer, "train")
    assert train[:10].tolist() == stdlib["train"].tolist()  # the standard library first, then the package
    assert len(train) == 10 + row["train_tokens"] and note["train_tokens"] == len(train)
    assert "def run(x):" in tokenizer.decode(train[10:].tolist())

    packed = corpus.pack(tokenizer, tmp_path / "corpus.npz.xz")
    for cached in (tmp_path / "cache").glob("*"):
        cached.unlink()
    corpus.unpack(tokenizer, packed)
    assert np.array_equal(corpus.token_array(tokenizer, "train"), train)
    assert np.array_equal(np.load(data.cache_file(tokenizer, "heldout")), stdlib["heldout"])
    assert corpus.manifest(tokenizer)["packages"] == note["packages"]
