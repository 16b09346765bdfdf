"""`bench`: the side-by-side comparison keeps its JSON contract and really compares outputs."""

from __future__ import annotations

import json

from conftest import PROMPTS


def test_bench_json_contract_and_identity(llama_pair, run_cli, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:2]))
    out = run_cli("bench", "--model", llama_pair.target, "--draft", llama_pair.draft, "--methods",
                  "autoregressive,speculative,hf_greedy,hf_assisted", "--prompts", prompts, "--max-new-tokens", 24,
                  "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["prompts"] == 2 and result["max_new_tokens"] == 24
    rows = result["methods"]
    assert set(rows) == {"autoregressive", "speculative", "hf_greedy", "hf_assisted"}
    for name, row in rows.items():
        assert set(row) >= {"tokens_per_s", "speedup", "mean_accepted", "acceptance_rate",
                            "identical_to_baseline"}
        assert row["tokens_per_s"] > 0
        assert row["identical_to_baseline"] is True, name  # all greedy: same tokens as our baseline
    assert rows["autoregressive"]["speedup"] == 1.0 and rows["autoregressive"]["mean_accepted"] == 1.0
    assert rows["hf_greedy"]["mean_accepted"] == 1.0  # counted by a hook on the target: one forward per token
    assert rows["speculative"]["mean_accepted"] > 1.0
    assert 0 < rows["speculative"]["acceptance_rate"] < 1
    # the i.i.d. theory next to it: alpha, the tokens per forward it predicts, the speedup the forwards' costs give
    spec = rows["speculative"]
    assert 0 < spec["alpha"] < 1 and 1 < spec["theory_tok_fwd"] <= 5 and spec["ideal_speedup"] > 0
    assert spec["cost_speedup"] > 0
    assert not {"alpha", "theory_tok_fwd", "ideal_speedup", "cost_speedup"} & set(rows["autoregressive"])
    assert "alpha" not in rows["hf_assisted"]  # a peer's steps are not seen


def test_bench_rejects_bad_prompt_files(llama_pair, run_cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no prompt field"}\n')
    for path in (bad, tmp_path / "missing.jsonl"):
        out = run_cli("bench", "--model", llama_pair.target, "--prompts", path)
        assert out.returncode == 2
        assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"prompt": PROMPTS[0]}) + "\n")
    out = run_cli("bench", "--model", llama_pair.target, "--methods", "autoregressive,warp", "--prompts", good)
    assert out.returncode == 2 and "warp" in out.stderr


def test_bench_takes_a_suite_name(shipped_pair, run_cli):
    out = run_cli("bench", "--model", shipped_pair.target, "--methods", "autoregressive,copyspec", "--prompts",
                  "repeat", "--limit", 1, "--max-new-tokens", 4, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["prompts"] == 1 and result["max_new_tokens"] == 4
    assert result["methods"]["copyspec"]["identical_to_baseline"] is True


def test_bench_refuses_an_unknown_suite_name_listing_the_suites(run_cli):
    out = run_cli("bench", "--prompts", "nonesuch")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "unknown prompt suite 'nonesuch'" in out.stderr and "complete, repeat, edit, docstring" in out.stderr
