"""The command line contract: `python -m playground generate|export|methods|models`, and its errors.

The happy paths run as real subprocesses. The many error cases run `playground.cli.main` in-process with the file
descriptors captured (so a traceback or a library warning printed anywhere would show up too), plus a few again as
subprocesses to pin down the process-level behaviour: exit status 2, one line on stderr, no traceback.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import PROMPTS, one_error_line, shipped_available

from playground.events import RunFinished, RunStarted, Stats, Step
from playground.methods import METHODS
from playground.models import loading as models

TOP_KEYS = {"run_id", "method", "model", "draft", "text", "token_ids", "stats", "theory"}
STATS_KEYS = {"new_tokens", "target_forwards", "draft_forwards", "mean_accepted", "acceptance_rate", "wall_s",
              "tokens_per_s", "draft_s", "verify_s"}


def check_contract(result: dict, *, method: str, model: str, draft: str | None, new: int) -> None:
    assert set(result) >= TOP_KEYS, set(result)
    assert set(result["stats"]) >= STATS_KEYS, set(result["stats"])
    assert isinstance(result["run_id"], int)
    assert (result["method"], result["model"], result["draft"]) == (method, model, draft)
    assert isinstance(result["text"], str)
    assert all(isinstance(t, int) for t in result["token_ids"]) and len(result["token_ids"]) == new
    stats = result["stats"]
    assert stats["new_tokens"] == new
    assert stats["target_forwards"] >= 1 and stats["wall_s"] > 0 and stats["tokens_per_s"] > 0
    assert stats["mean_accepted"] == pytest.approx(new / stats["target_forwards"])
    assert stats["verify_s"] > 0 and stats["draft_s"] >= 0
    if draft is None:
        assert stats["draft_forwards"] == 0 and stats["acceptance_rate"] is None and stats["draft_s"] == 0
    else:
        assert stats["draft_forwards"] > 0 and 0.0 <= stats["acceptance_rate"] <= 1.0 and stats["draft_s"] > 0


# ------------------------------------------------------------ subprocesses: the real contract


def test_generate_json_export_roundtrip(llama_pair, db, run_cli, stored_runs):
    spec = run_cli("generate", "--model", llama_pair.target, "--draft", llama_pair.draft, "--method", "speculative",
                   "--param", "gamma=3", "--prompt", PROMPTS[0], "--max-new-tokens", 20, "--db", db, "--json")
    assert spec.returncode == 0, spec.stderr
    assert spec.stderr == "", "--json prints nothing but the result (no warnings, no progress bars)"
    result = json.loads(spec.stdout)  # stdout is exactly one JSON document
    check_contract(result, method="speculative", model=llama_pair.target, draft=llama_pair.draft, new=20)
    tokenizer = models.load(llama_pair.target).tokenizer
    assert result["text"] == tokenizer.decode(result["token_ids"], skip_special_tokens=True)
    assert stored_runs(db) == [(result["run_id"], "finished")]

    exported = run_cli("export", result["run_id"], "--db", db)
    assert exported.returncode == 0, exported.stderr
    run = json.loads(exported.stdout)
    assert run["run_id"] == result["run_id"]
    assert run["run"]["method"] == "speculative" and run["run"]["settings"]["gamma"] == 3
    assert run["steps"] and [t for s in run["steps"] for t in s["tokens"]] == result["token_ids"]
    assert run["result"]["token_ids"] == result["token_ids"] and run["result"]["text"] == result["text"]
    assert run["result"]["stats"]["new_tokens"] == 20
    assert sum(s["accepted"] for s in run["steps"]) / sum(len(s["drafted"]) for s in run["steps"]) == \
        pytest.approx(result["stats"]["acceptance_rate"])
    accepted = sum(s["accepted"] for s in run["steps"])  # alpha: accepted over accepted plus rejections
    rejections = sum(s["accepted"] < len(s["drafted"]) for s in run["steps"])
    theory = result["theory"]
    assert theory["kind"] == "chain" and theory["alpha"] == pytest.approx(accepted / (accepted + rejections))
    assert theory["tokens_per_forward"] == pytest.approx(result["stats"]["mean_accepted"])
    assert 1 <= theory["predicted_tokens_per_forward"] <= 4


def test_generate_json_autoregressive_matches_speculative(llama_pair, db, main, stored_runs):
    common = ("--model", llama_pair.target, "--prompt", PROMPTS[1], "--max-new-tokens", 16, "--db", db, "--json")
    status, out, err = main("generate", *common)
    assert status == 0, err
    ar = json.loads(out)
    check_contract(ar, method="autoregressive", model=llama_pair.target, draft=None, new=16)
    assert ar["stats"]["target_forwards"] == 16
    status, out, err = main("generate", *common, "--method", "speculative", "--draft", llama_pair.draft)
    assert status == 0, err
    spec = json.loads(out)
    check_contract(spec, method="speculative", model=llama_pair.target, draft=llama_pair.draft, new=16)
    assert spec["token_ids"] == ar["token_ids"], "greedy speculative must equal greedy autoregressive"
    assert spec["stats"]["target_forwards"] < 16
    assert stored_runs(db) == [(ar["run_id"], "finished"), (spec["run_id"], "finished")]


def test_methods_lists_both_methods_with_gamma(run_cli, main):
    status, out, _ = main("methods")
    assert status == 0
    assert "autoregressive" in out and "gamma=4 [1..32]" in out
    assert "speculative (needs a draft: --draft, by default tiny-code-draft with tiny-code)" in out
    assert "gad (needs a draft: --draft, by default tiny-numbers-dat-kd with tiny-numbers-ar)" in out
    listed = run_cli("methods", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {m["name"]: m for m in json.loads(listed.stdout)}
    assert set(rows) >= {"autoregressive", "speculative"}
    assert rows["autoregressive"]["params"] == [] and rows["autoregressive"]["needs_draft"] is False
    assert rows["speculative"]["needs_draft"] is True and rows["speculative"]["lossless"] is True
    gamma = {p["name"]: p for p in rows["speculative"]["params"]}["gamma"]
    assert (gamma["default"], gamma["min"], gamma["max"]) == (4, 1, 32)


def test_models_runs(run_cli, main):
    status, out, _ = main("models")
    assert status == 0
    assert "Hub id" in out
    listed = run_cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert isinstance(rows, list)
    names = {r["name"] for r in rows}
    if shipped_available():
        assert {"tiny-code", "tiny-code-draft"} <= names
        for r in rows:
            assert r["architecture"] and r["layers"] and r["hidden_size"]
            assert f"{r['name']}:" in out


def test_error_as_a_process_one_line_no_traceback(llama_pair, db, run_cli, stored_runs):
    done = run_cli("generate", "--model", llama_pair.target, "--draft", llama_pair.draft, "--method", "speculative",
                   "--param", "gamma=abc", "--prompt", "x = 1", "--db", db, "--json")
    assert done.returncode == 2
    assert "parameter gamma must be int, got 'abc'" in one_error_line(done.stderr)
    assert done.stdout == ""
    assert stored_runs(db) == []


def test_incompatible_draft_as_a_process(llama_pair, wide_vocab_draft, db, run_cli, stored_runs):
    done = run_cli("generate", "--model", llama_pair.target, "--method", "speculative", "--draft", wide_vocab_draft,
                   "--prompt", "x = 1", "--db", db)
    assert done.returncode == 2
    line = one_error_line(done.stderr)  # loading two models printed nothing else either
    assert "vocabulary" in line and "5000" in line and "4096" in line
    assert stored_runs(db) == []


def test_generate_on_the_defaults_uses_the_shipped_models(shipped_pair, db, run_cli):
    ar = run_cli("generate", "--prompt", "def add(a, b):", "--max-new-tokens", 24, "--db", db, "--json")
    assert ar.returncode == 0, ar.stderr
    ar = json.loads(ar.stdout)
    assert ar["model"] == models.DEFAULT_MODEL == "tiny-code" and ar["draft"] is None
    assert ar["method"] == "autoregressive"
    new = len(ar["token_ids"])
    assert 1 <= new <= 24 and ar["stats"]["new_tokens"] == new

    spec = run_cli("generate", "--prompt", "def add(a, b):", "--max-new-tokens", 24, "--method", "speculative",
                   "--db", db, "--json")
    assert spec.returncode == 0, spec.stderr
    spec = json.loads(spec.stdout)
    check_contract(spec, method="speculative", model="tiny-code", draft=models.DEFAULT_DRAFT, new=new)
    assert spec["token_ids"] == ar["token_ids"]


@pytest.mark.parametrize("method", sorted(name for name, m in METHODS.items()
                                          if m.lossless and "causal" in m.kinds))  # gad: tests/test_dag.py
def test_every_method_runs_on_its_defaults_with_the_shipped_models(shipped_pair, db, main, method):
    """`generate --method M --json` with no --param, as the issue asks; every method is lossless: same tokens."""
    outputs = {}
    for name in ("autoregressive", method):
        status, out, err = main("generate", "--prompt", "def add(a, b):", "--max-new-tokens", 24, "--method", name,
                                "--db", db, "--json")
        assert status == 0, err
        outputs[name] = json.loads(out)
    assert outputs[method]["method"] == method and outputs[method]["stats"]["new_tokens"] >= 1
    assert outputs[method]["token_ids"] == outputs["autoregressive"]["token_ids"]


def test_plain_generate_on_the_defaults(shipped_pair, db, main, stored_runs):
    status, out, err = main("generate", "--prompt", "def add(a, b):", "--max-new-tokens", 24,
                            "--method", "speculative", "--db", db)
    assert status == 0, err
    run_id, stored = stored_runs(db)[0]
    assert stored == "finished"
    exported = json.loads(main("export", run_id, "--db", db)[1])
    assert exported["run"]["model"] == "tiny-code" and exported["run"]["draft"] == "tiny-code-draft"
    assert out == exported["result"]["text"]
    assert f"[run {run_id}: " in err


# ------------------------------------------------------------ in-process: every way to get a request wrong


def long_prompt(tokens_at_least: int, tokenizer) -> str:
    text = ""
    i = 0
    while len(tokenizer(text)["input_ids"]) < tokens_at_least:
        text += f"value_{i} = compute({i}, {i * 7 % 13})\n"
        i += 1
    return text


BAD_REQUESTS = {
    # id: (extra arguments, words the one error line must contain)
    "unknown-model": (("--model", "no-such-model-anywhere"), "cannot load model 'no-such-model-anywhere'"),
    "unknown-method": (("--method", "beam-search"), "unknown method 'beam-search'"),
    "gamma-not-int": (("--method", "speculative", "--param", "gamma=abc"), "parameter gamma must be int"),
    "gamma-float": (("--method", "speculative", "--param", "gamma=2.5"), "parameter gamma must be int"),
    "gamma-zero": (("--method", "speculative", "--param", "gamma=0"), "parameter gamma must be between 1"),
    "gamma-huge": (("--method", "speculative", "--param", "gamma=1000"), "parameter gamma must be between 1"),
    "unknown-param": (("--method", "speculative", "--param", "nope=1"), "unknown parameter 'nope'"),
    "param-for-autoregressive": (("--param", "gamma=2"), "unknown parameter 'gamma' for method autoregressive"),
    "param-without-value": (("--param", "gamma"), "--param takes key=value"),
    "empty-prompt": (("--prompt", ""), "the prompt is empty"),
    "blank-prompt": (("--prompt", "  \n\t "), "the prompt is empty"),
    "huge-prompt": (("--prompt", "x" * 50_001), "the limit is 50,000"),
    "no-new-tokens": (("--max-new-tokens", 0), "max_new_tokens must be between 1 and 2048"),
    "negative-new-tokens": (("--max-new-tokens", -3), "max_new_tokens must be between 1 and 2048"),
    "too-many-new-tokens": (("--max-new-tokens", 100_000), "max_new_tokens must be between 1 and 2048"),
    "negative-temperature": (("--temperature", -1), "temperature must be between"),
    "nan-temperature": (("--temperature", "nan"), "temperature must be between"),
    "top-p-zero": (("--top-p", 0), "top_p must be in (0, 1]"),
    "top-p-above-one": (("--top-p", 1.5), "top_p must be in (0, 1]"),
    "top-p-nan": (("--top-p", "nan"), "top_p must be in (0, 1]"),
    "negative-top-k": (("--top-k", -1), "top_k must be between"),
    "tiny-temperature": (("--temperature", 1e-40), "temperature must be 0 (greedy) or at least"),
    "huge-seed": (("--seed", 2**64), "seed must be between"),
    "no-draft": (("--method", "speculative", "--draft", ""), "needs a draft model"),
    "missing-draft": (("--method", "speculative", "--draft", "no-such-draft"), "cannot load model 'no-such-draft'"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_fail_with_one_line_and_store_nothing(llama_pair, db, main, stored_runs, case):
    extra, needle = BAD_REQUESTS[case]
    args = ["generate", "--model", llama_pair.target, "--prompt", "x = 1", "--max-new-tokens", 8, "--db", db]
    status, out, err = main(*args, *extra)  # later options win over the defaults above
    assert status == 2, (out, err)
    line = one_error_line(err)
    assert needle in line, line
    assert out == ""
    assert stored_runs(db) == [], "a rejected request left a row in the database"


def test_incompatible_draft_vocabulary(llama_pair, wide_vocab_draft, db, main, stored_runs):
    status, out, err = main("generate", "--model", llama_pair.target, "--method", "speculative", "--draft",
                            wide_vocab_draft, "--prompt", "x = 1", "--db", db, "--json")
    assert status == 2 and out == ""
    assert "does not share the vocabulary" in one_error_line(err)
    assert stored_runs(db) == []


def test_a_folder_that_is_not_a_model(llama_pair, tmp_path, db, main, stored_runs):
    status, out, err = main("generate", "--model", llama_pair.target, "--method", "speculative", "--draft",
                            tmp_path, "--prompt", "x = 1", "--db", db)
    assert status == 2 and "cannot load model" in one_error_line(err)
    assert stored_runs(db) == []


def test_a_checkpoint_missing_weights_is_refused(llama_pair, tmp_path, db, main, stored_runs):
    """from_pretrained fills missing weights with random ones and only warns: such a model would write noise."""
    import safetensors.torch
    folder = tmp_path / "older"
    shutil.copytree(llama_pair.target, folder)
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    dropped = sorted(weights)[0]
    safetensors.torch.save_file({k: v for k, v in weights.items() if k != dropped}, folder / "model.safetensors",
                                metadata={"format": "pt"})
    status, out, err = main("generate", "--model", folder, "--prompt", "x = 1", "--db", db)
    line = one_error_line(err)
    assert status == 2 and out == "" and "lacks 1 of the weights" in line and dropped in line
    assert stored_runs(db) == []


def test_prompt_too_long_for_the_context(llama_pair, db, main, stored_runs):
    tokenizer = models.load(llama_pair.target).tokenizer
    prompt = tokenizer.decode(tokenizer(long_prompt(250, tokenizer))["input_ids"][:250])
    status, out, err = main("generate", "--model", llama_pair.target, "--prompt", prompt, "--max-new-tokens", 16,
                            "--db", db)
    assert status == 2 and out == ""
    line = one_error_line(err)
    assert "256-token context" in line and "max_new_tokens 16" in line
    room = 256 - len(tokenizer(prompt)["input_ids"])
    assert 0 < room < 16 and f"set max_new_tokens to {room} or less" in line  # says what would fit
    assert stored_runs(db) == []


def test_draft_with_a_shorter_context_is_rejected_up_front(gpt2_pair, short_context_draft, db, main, stored_runs):
    """The draft sees every committed token too: a 32-position GPT-2 draft cannot follow a 40-token run."""
    status, out, err = main("generate", "--model", gpt2_pair.target, "--method", "speculative", "--draft",
                            short_context_draft, "--prompt", PROMPTS[0], "--max-new-tokens", 40, "--db", db)
    assert status == 2 and out == ""
    assert "context" in one_error_line(err)
    assert stored_runs(db) == [], "the run should be refused before it starts, not stored as failed"
    # within the draft's context the same pair works
    status, out, err = main("generate", "--model", gpt2_pair.target, "--method", "speculative", "--draft",
                            short_context_draft, "--prompt", PROMPTS[0], "--max-new-tokens", 12, "--db", db,
                            "--json")
    assert status == 0, err
    assert len(json.loads(out)["token_ids"]) == 12


def test_export_of_an_unknown_run(db, main):
    from playground.storage.recorder import Recorder
    Recorder(db)  # a database without that run (a missing database: tests/test_hostile_input.py)
    status, out, err = main("export", 999, "--db", db)
    assert status == 2 and out == ""
    assert "no run 999" in one_error_line(err)


def test_plain_output_streams_the_text_and_summarises_on_stderr(llama_pair, db, main, stored_runs):
    status, out, err = main("generate", "--model", llama_pair.target, "--prompt", PROMPTS[2], "--max-new-tokens",
                            24, "--temperature", 1.0, "--seed", 5, "--db", db)
    assert status == 0, err
    run_id, stored = stored_runs(db)[0]
    assert stored == "finished"
    exported = json.loads(main("export", run_id, "--db", db)[1])
    text = exported["result"]["text"]
    assert out == text  # streamed piece by piece, the same text in the end
    assert err.startswith("\n\n") and f"[run {run_id}: 24 tokens" in err and "Traceback" not in err


@pytest.mark.parametrize("cut", [None, 4], ids=["whole", "ends-mid-character"])
def test_streamed_text_survives_characters_split_across_tokens(llama_pair, db, main, monkeypatch, cut):
    """Byte-level BPE splits '日本' over several tokens; a partial character must not be printed as U+FFFD."""
    tokenizer = models.load(llama_pair.target).tokenizer
    ids = tokenizer("a 日本 é!")["input_ids"][:cut]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert "\ufffd" in tokenizer.decode(ids[:3]), "the tokenizer no longer splits these characters"
    assert (cut is None) != text.endswith("\ufffd")

    def fake_generate(req, cancel=None):
        yield RunStarted(method="autoregressive", model=req.model, draft=None, prompt=req.prompt, prompt_ids=[5],
                         settings={})
        steps = [Step(index=i, tokens=[t], sources=["target"], p=[0.5], q=[None]) for i, t in enumerate(ids)]
        yield from steps
        yield RunFinished(status="finished", text=text, token_ids=ids, stats=Stats.from_steps(steps, 0.1))

    monkeypatch.setattr("playground.engine.generate", fake_generate)
    status, out, err = main("generate", "--model", llama_pair.target, "--prompt", "x", "--db", db)
    assert status == 0, err
    assert out == text, f"streamed {out!r}"


def test_db_from_environment_then_default_file(llama_pair, tmp_path, main, monkeypatch, stored_runs):
    monkeypatch.chdir(tmp_path)
    env_db = tmp_path / "from-env.db"
    monkeypatch.setenv("PLAYGROUND_DB", str(env_db))
    args = ("generate", "--model", llama_pair.target, "--prompt", "x = 1", "--max-new-tokens", 2, "--json")
    assert main(*args)[0] == 0
    assert [s for _, s in stored_runs(env_db)] == ["finished"]
    flag_db = tmp_path / "from-flag.db"
    assert main(*args, "--db", flag_db)[0] == 0
    assert len(stored_runs(flag_db)) == 1 and len(stored_runs(env_db)) == 1
    monkeypatch.delenv("PLAYGROUND_DB")
    assert main(*args)[0] == 0
    assert len(stored_runs(tmp_path / "playground.db")) == 1
