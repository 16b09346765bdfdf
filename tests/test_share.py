"""Runs shared as files: `export RUN --html FILE` writes one self-contained page that replays the run offline, and
`gallery RUN ... --out DIR` a static site of them (playground/share). The page must load nothing, escape every text
of the run, and hold History's views after every step; the browser side is tests/test_share_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from conftest import PROMPTS, one_error_line
from recorded import HOSTILE, autoregressive_of, hostile_run, hostile_steps, store

from playground.events import TREE
from playground.share import page as share
from playground.share.gallery import write_gallery
from playground.storage.recorder import Recorder
from playground.views import run as views


class Tags(HTMLParser):
    """Every start tag of a document with its attributes; script and style contents are raw text, as a browser
    reads them, so a value that closed its script element early would show up here as tags."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.data: list[str] = []  # the text outside script elements
        self.in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.in_script = tag == "script"

    def handle_endtag(self, tag):
        self.in_script = False

    def handle_data(self, data):
        if not self.in_script:
            self.data.append(data)


def page_data(text: str) -> dict:
    """The frames a page holds (its #pg-run-data script), as its player reads them: each value whole."""
    body = re.search(r'<script type="application/json" id="pg-run-data">(.*?)</script>', text, re.S).group(1)
    assert "<" not in body and ">" not in body, "a value could close the script element"
    return whole_values(json.loads(body))


def whole_values(data: dict) -> dict:
    """`data` with each value stored as a change from an earlier one (share.page._Values) made whole again, as
    static/export.js does."""
    values = data["values"]
    for i, value in enumerate(values):
        if isinstance(value, dict) and "delta" in value:
            base, keep, tail, text = value["delta"]
            assert base < i and isinstance(values[base], str)
            values[i] = values[base][:keep] + text + values[base][len(values[base]) - tail:]
    return data


def chip_steps(chips: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-step="(\d+)"', chips)]


@pytest.fixture
def hostile(db):
    """(db, run id, its reference's id) of a hostile speculative run and the autoregressive run stored after it."""
    events = hostile_run(hostile_steps())
    run_id, ar_id = store(db, events, autoregressive_of(events))
    return db, run_id, ar_id


def test_the_page_loads_nothing(hostile, tmp_path):
    db, run_id, _ = hostile
    text = share.export_html(Recorder(db, create=False), run_id, tmp_path / "run.html").read_text()
    tags = Tags(text).tags
    for tag, attrs in tags:
        assert "src" not in attrs and "href" not in attrs and "srcset" not in attrs, (tag, attrs)
        assert tag not in ("link", "iframe", "img", "object", "embed", "base"), tag
    assert [t for t, _ in tags].count("script") == 4  # the frames, Plotly.js, the views' scripts, the player
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), "a style sheet fetches something"
    assert not re.search(r"\bimport\s*\(|fetch\(['\"]https?:", share._scripts() + share.static_files.text("export.js"))
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src" not in csp  # default-src covers fetch, images, fonts
    assert "plotly.js v" in text[:300_000] or "plotly.js v" in text  # Plotly.js itself, inlined


def test_hostile_text_stays_text(hostile, tmp_path):
    db, run_id, _ = hostile
    text = share.export_html(Recorder(db, create=False), run_id, tmp_path / "run.html").read_text()
    parsed = Tags(text)
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs), "an event handler attribute"
    assert "alert" not in "".join(parsed.data)  # the run's texts are only in the frames' JSON
    data = page_data(text)
    html_values = [v for v in data["values"] if isinstance(v, str)]
    for value in html_values:  # what the player puts in the page with innerHTML
        inner = Tags(value)
        assert all(tag not in ("script", "img", "svg", "iframe", "style") for tag, _ in inner.tags), value[:200]
        assert not any(k.startswith("on") for _, attrs in inner.tags for k in attrs), value[:200]
    shown = "".join("".join(Tags(v).data) for v in html_values)
    for hostile_text in ("<script>alert('token')</script>", "<img src=x onerror=alert('img')>",
                         "<script>alert('prompt')</script>", "<script>alert('model')</script>"):
        assert hostile_text in shown, f"{hostile_text!r} is not shown as text"
    assert "<script>alert('draft')</script>" in shown  # the rejected draft, in the step told in full
    assert "<script>alert" not in share.script_json(json.dumps(HOSTILE))


def test_every_step_is_a_frame_as_history_shows_it(hostile, tmp_path):
    db, run_id, ar_id = hostile
    recorder = Recorder(db, create=False)
    started, steps, finished = recorder.replay(run_id)
    data = page_data(share.export_html(recorder, run_id, tmp_path / "run.html").read_text())
    assert data["steps"] == len(steps) == 6
    assert [f["steps"] for f in data["frames"]] == list(range(7))
    values = data["values"]
    for frame in data["frames"]:
        k, parts = frame["steps"], frame["parts"]
        assert chip_steps(values[parts["chips"]]) == sorted(i for s in steps[:k] for i in [s.index] * len(s.tokens))
        assert values[parts["status"]] == views.run_view(started, steps[:k], finished, total=len(steps)).status
        assert f"step {k} of 6" in values[parts["status"]]
        assert values[parts["accepted"]]["layout"]["title"]["text"] == "Tokens committed per step"
        # the comparison with the autoregressive run stored after it: at the last step only, as History shows it
        assert (parts["baseline"] is not None) == (k == len(steps))
    assert [f["t"] for f in data["frames"]] == sorted(f["t"] for f in data["frames"])
    verdict = values[data["frames"][-1]["parts"]["baseline"]]
    assert f"autoregressive run #{ar_id}" in verdict and 'data-verdict="identical"' in verdict


def test_a_long_run_is_shown_after_evenly_spread_steps(db):
    events = hostile_run(hostile_steps(23))
    store(db, events)
    started, steps, finished = Recorder(db, create=False).replay(1)
    encoded = share.run_data(started, steps, finished, most=5)
    data = whole_values(json.loads(encoded))
    shown = [f["steps"] for f in data["frames"]]
    assert shown[0] == 0 and shown[-1] == 23 and len(shown) == 6 and shown == sorted(shown)
    last = data["values"][data["frames"][-1]["parts"]["chips"]]
    assert sorted(set(chip_steps(last))) == list(range(23)), "a step's tokens are missing from the last frame"
    assert share.frame_steps(3, 5) == [0, 1, 2, 3] and share.frame_steps(10, 4) == [0, 2, 5, 8, 10]
    # every frame's chips whole, yet the text is stored about once: each frame adds its steps' tokens to the last
    chips = [data["values"][f["parts"]["chips"]] for f in data["frames"]]
    assert chips[-1] == views.run_view(started, steps, finished, total=23).chips
    assert sum(map(len, chips)) > 3 * len(chips[-1]) and len(encoded) < 2.5 * len(chips[-1]) + 60_000


def test_a_tree_run_keeps_its_animated_tree_once(llama_pair, db, run_engine, tmp_path):
    run = run_engine(prompt=PROMPTS[0], model=llama_pair.target, draft=llama_pair.draft, method="tree_speculative",
                     max_new_tokens=16)
    (run_id,) = store(db, [run[0], *run[1], run[2]])
    recorder = Recorder(db, create=False)
    _, steps, _ = recorder.replay(run_id)
    data = page_data(share.export_html(recorder, run_id, tmp_path / "tree.html").read_text())
    trees = {f["parts"]["tree"] for f in data["frames"]}
    assert trees - {None} and len(trees - {None}) == 1, "the tree view is stored once, whole"
    tree = data["values"][next(iter(trees - {None}))]
    assert f'data-steps="{sum(s.kind == TREE for s in steps)}"' in tree
    assert data["frames"][0]["parts"]["tree"] is None  # no tree before the first step, as in History


def test_gallery_lists_the_runs_and_links_their_pages(hostile, tmp_path):
    db, run_id, ar_id = hostile
    out = tmp_path / "site" / "runs"
    index = write_gallery(Recorder(db, create=False), [run_id, ar_id], out)
    assert index == out / "index.html"
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", "index.html", f"run-{run_id}.html",
                                                             f"run-{ar_id}.html"])
    assert "sdk: static" in (out / "README.md").read_text()
    text = index.read_text()
    rows = re.findall(r'<tr data-run="(\d+)">(.*?)</tr>', text, re.S)
    assert [int(r) for r, _ in rows] == [run_id, ar_id]
    recorder = Recorder(db, create=False)
    speed = recorder.replay(run_id)[2].stats.tokens_per_s / recorder.replay(ar_id)[2].stats.tokens_per_s
    assert f"<td>{speed:.2f}×</td>" in rows[0][1] and "<td>baseline</td>" in rows[1][1]
    assert f'href="run-{run_id}.html"' in rows[0][1] and "&lt;script&gt;alert(&#x27;model&#x27;)" in rows[0][1]
    assert not any(k.startswith("on") for _, a in Tags(text).tags for k in a) and "<script" not in text
    assert 'href="index.html"' in (out / f"run-{run_id}.html").read_text()


def test_a_gallery_with_an_unknown_or_repeated_run_writes_nothing(hostile, tmp_path, main):
    db, run_id, _ = hostile
    for runs, message in (([run_id, 99], "no run 99"), ([run_id, run_id], f"run {run_id} is listed twice")):
        status, out, err = main("gallery", *runs, "--out", tmp_path / "site", "--db", db)
        assert status == 2 and out == "" and message in one_error_line(err)
        assert not (tmp_path / "site").exists()


def test_export_html_from_the_command_line(hostile, tmp_path, main):
    db, run_id, _ = hostile
    target = tmp_path / "shared.html"
    status, out, err = main("export", run_id, "--html", target, "--db", db)
    assert status == 0 and err == "", err
    assert out.startswith(f"wrote run {run_id} to {target}") and out.count("\n") == 1
    assert page_data(target.read_text())["steps"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db", "runs.db-shm", "runs.db-wal", "shared.html"]
    status, out, err = main("gallery", run_id, "--out", tmp_path / "site", "--db", db)
    assert status == 0 and (tmp_path / "site" / f"run-{run_id}.html").is_file() and "index.html" in out


@pytest.mark.parametrize("where, message", [
    ("missing/run.html", "no folder"), (".", "it is a folder"), ("runs.db/run.html", "no folder")])
def test_export_html_to_a_path_it_cannot_write(hostile, tmp_path, main, monkeypatch, where, message):
    db, run_id, _ = hostile
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out, err = main("export", run_id, "--html", where, "--db", db)
    assert status == 2 and out == "" and message in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "it left something behind"


def test_export_html_of_an_unknown_run_or_a_missing_database(hostile, tmp_path, main):
    db, _, _ = hostile
    status, _, err = main("export", 99, "--html", tmp_path / "x.html", "--db", db)
    assert status == 2 and "no run 99" in one_error_line(err) and not (tmp_path / "x.html").exists()
    status, _, err = main("export", 1, "--html", tmp_path / "x.html", "--db", tmp_path / "none.db")
    assert status == 2 and "no run database" in one_error_line(err) and not (tmp_path / "none.db").exists()


def test_gallery_into_a_file(hostile, tmp_path, main):
    db, run_id, _ = hostile
    status, _, err = main("gallery", run_id, "--out", db, "--db", db)
    assert status == 2 and "it is a file" in one_error_line(err)
