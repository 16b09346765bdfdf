"""DAG decoding: the number task, the DA-Transformer's dynamic program and decoders against brute force, gad's
identity with autoregressive greedy decoding (shipped models and random encoder-decoders of several architectures),
and the errors a person can run into."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
import torch

from playground.data import numbers
from playground.errors import PlaygroundError
from playground.runtime import dag_graph as dag

SHIPPED = ("tiny-numbers-ar", "tiny-numbers-dat", "tiny-numbers-nat", "tiny-numbers-dat-kd")
SEQ2SEQ_ARCHS = ("bart", "t5", "marian", "pegasus")


# ---------- the task ----------

@pytest.mark.parametrize("n, french, english", [
    (0, "zéro", {"zero"}),
    (21, "vingt et un", {"twenty-one"}),
    (71, "soixante et onze", {"seventy-one"}),
    (80, "quatre-vingts", {"eighty"}),
    (91, "quatre-vingt-onze", {"ninety-one"}),
    (200, "deux cents", {"two hundred"}),
    (243, "deux cent quarante-trois", {"two hundred forty-three", "two hundred and forty-three"}),
    (1000, "mille", {"one thousand", "a thousand"}),
    (80_000, "quatre-vingt mille", {"eighty thousand"}),
    (200_000, "deux cent mille", {"two hundred thousand"}),
    (5005, "cinq mille cinq", {"five thousand five", "five thousand and five"}),
    (1100, "mille cent", {"one thousand one hundred", "a thousand one hundred"}),
    (4253, "quatre mille deux cent cinquante-trois", {
        "four thousand two hundred fifty-three", "four thousand two hundred and fifty-three"}),
    (101_101, "cent un mille cent un", {f"{a} hundred{x} one thousand one hundred{y} one"
                                        for a in ("one", "a") for x in ("", " and") for y in ("", " and")}),
])
def test_french_and_every_english_rendering(n, french, english):
    assert numbers.french(n) == french and numbers.renderings(n) == english


def test_predictions_are_judged_correct_mixed_or_wrong():
    assert numbers.judge("two hundred and five thousand three hundred and six", 205_306) == "correct"
    assert numbers.judge("two hundred and five thousand three hundred six", 205_306) == "correct"  # per group
    assert numbers.judge("two hundred and five thousand three hundred six", 205_307) == "wrong"
    assert numbers.judge("a thousand and one", 1001) == "correct"
    assert numbers.judge("two hundred five", 205_306) == "wrong"
    # two renderings of one length, "and" in the first group or in the second: a NAT's repetition mixes them
    assert numbers.judge("two hundred forty forty-three thousand four hundred five", 243_405) == "mixed"
    assert numbers.judge("two hundred forty forty-three thousand four hundred six", 243_405) == "wrong"
    with pytest.raises(ValueError):
        numbers.french(1_000_000)


def test_heldout_numbers_never_reach_training():
    train = {e.number for e in numbers.examples(3000, seed=7, heldout=False)}
    test = {e.number for e in numbers.examples(300, seed=1, heldout=True)}
    assert not train & test and all(numbers.is_heldout(n) for n in test)
    assert 0.03 < sum(map(numbers.is_heldout, range(100, 100_000))) / 99_900 < 0.07


def test_the_suite_is_the_heldout_set_with_every_rendering():
    from playground.data.suites import suite_path
    rows = [json.loads(line) for line in suite_path("numbers").read_text().splitlines()]
    assert len(rows) == 300 and len({r["number"] for r in rows}) == 300
    for r in rows:
        assert numbers.is_heldout(r["number"]) and r["prompt"] == numbers.french(r["number"])
        assert set(r["references"]) == numbers.renderings(r["number"])


def test_tokenizer_round_trips_every_word():
    from playground.training.train_dag import load_tokenizer
    tok = load_tokenizer()
    rng = random.Random(0)
    for n in [rng.randint(0, numbers.MAX_NUMBER) for _ in range(200)] + [71, 80, 1000]:
        for text in [numbers.french(n), *numbers.renderings(n)]:
            ids = tok(text)["input_ids"]
            assert tok.unk_token_id not in ids and ids[-1] == tok.eos_token_id
            assert tok.decode(ids, skip_special_tokens=True) == text


# ---------- the dynamic program and the decoders, against brute force on small random graphs ----------

def _graph(size: int, vocab: int, seed: int) -> dag.Graph:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.log_softmax(torch.randn(size, vocab, generator=gen) * 2, -1)
    scores = torch.randn(size, size, generator=gen) * 2
    later = torch.ones(size, size, dtype=torch.bool).triu(1)
    links = torch.log_softmax(scores.masked_fill(~later, dag.NEG), -1)
    links[-1] = dag.NEG
    return dag.Graph(tokens, links)


def _paths(size: int):
    """Every path 0 -> size-1 through increasing vertices."""
    for k in range(size - 1):
        for middle in itertools.combinations(range(1, size - 1), k):
            yield [0, *middle, size - 1]


def _path_logprob(g: dag.Graph, path: list[int]) -> float:
    return sum(float(g.links[a, b]) for a, b in zip(path, path[1:]))


def test_dp_loss_is_the_sum_over_all_paths():
    from playground.training.train_dag import best_alignment, dag_loss
    g = _graph(6, 5, seed=0)
    target = torch.tensor([[1, 3, 2, 4]])
    out = type("Out", (), {"token_logprobs": g.token_logprobs[None], "links": g.links[None],
                           "vertex_mask": torch.ones(1, 6, dtype=torch.bool)})
    total, best, best_path = [], -math.inf, None
    for path in _paths(6):
        if len(path) != 4:
            continue
        score = _path_logprob(g, path) + sum(float(g.token_logprobs[v, y]) for v, y in zip(path, target[0].tolist()))
        total.append(score)
        if score > best:
            best, best_path = score, path
    expected = -torch.logsumexp(torch.tensor(total), 0) / 4
    assert torch.allclose(dag_loss(out, target), expected, atol=1e-5)
    assert best_alignment(out, target)[0].tolist() == best_path


def test_passing_probability_is_the_share_of_paths_through_each_vertex():
    g = _graph(6, 4, seed=1)
    through = torch.zeros(6)
    for path in _paths(6):
        through[path] += math.exp(_path_logprob(g, path))
    assert torch.allclose(g.passing(), through, atol=1e-5)


def test_each_strategy_matches_its_definition():
    g = _graph(7, 6, seed=2)
    best_token = g.token_logprobs.max(-1).values

    def score(path):
        return _path_logprob(g, path) + float(best_token[path].sum())

    path, tokens = dag.viterbi(g)
    assert path == max(_paths(7), key=lambda p: score(p) / len(p))
    assert tokens == g.token_logprobs[path].argmax(-1).tolist()
    greedy_path, _ = dag.greedy(g)
    assert all(b == int(g.links[a].argmax()) for a, b in zip(greedy_path, greedy_path[1:]))
    look_path, _ = dag.lookahead(g)
    assert all(b == int((g.links[a] + best_token).argmax()) for a, b in zip(look_path, look_path[1:]))
    beam_path, beam_tokens = dag.beam(g, width=64, tokens_per_vertex=1)  # wide enough to be exhaustive here
    assert beam_path[0] == 0 and beam_path[-1] == 6 and len(beam_tokens) == len(beam_path)


def test_the_bigram_lm_steers_beam_search():
    g = _graph(5, 4, seed=3)
    plain = dag.beam(g, width=8, tokens_per_vertex=4)[1]
    lm = dag.Bigram(torch.full((4, 4), -20.0).fill_diagonal_(0.0))  # only repeats are likely
    steered = dag.beam(g, width=8, tokens_per_vertex=4, lm=lm, lm_weight=5.0)[1]
    assert len(set(steered)) == 1 and steered != plain


# ---------- shipped models ----------

@pytest.fixture(scope="module")
def records():
    from playground.bench.benchmark import read_records
    return read_records("numbers")


def test_shipped_models_load_through_the_auto_classes():
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    from playground.models.dat import DatModel
    from playground.models.loading import MODELS_DIR
    assert isinstance(AutoModel.from_pretrained(MODELS_DIR / "tiny-numbers-dat"), DatModel)
    assert isinstance(AutoModel.from_pretrained(MODELS_DIR / "tiny-numbers-dat-kd"), DatModel)
    assert not AutoModel.from_pretrained(MODELS_DIR / "tiny-numbers-nat").config.graph
    assert AutoModelForSeq2SeqLM.from_pretrained(MODELS_DIR / "tiny-numbers-ar").config.is_encoder_decoder


@pytest.mark.parametrize("drafter", ["tiny-numbers-dat-kd", "tiny-numbers-dat"])
def test_gad_equals_autoregressive_greedy_on_the_shipped_models(run_engine, records, drafter):
    accepted = 0
    for r in records[:40]:
        *_, ar = run_engine(prompt=r["prompt"], model="tiny-numbers-ar", method="autoregressive", max_new_tokens=32)
        _, steps, gad = run_engine(prompt=r["prompt"], model="tiny-numbers-ar", method="gad",
                                   draft=drafter, max_new_tokens=32)
        assert gad.status == "finished" and gad.token_ids == ar.token_ids, r["prompt"]
        assert gad.stats.target_forwards <= ar.stats.target_forwards
        accepted += sum(s.accepted for s in steps)
    assert accepted > 0  # the drafts are used, not just verified away


@pytest.mark.parametrize("strategy", dag.STRATEGIES)
def test_each_strategy_translates_and_records_the_graph(run_engine, strategy):
    started, steps, done = run_engine(prompt="trois cent douze", model="tiny-numbers-dat", method="dag",
                                      params={"strategy": strategy})
    assert done.status == "finished" and len(steps) == 1 and done.stats.target_forwards == 1
    step = steps[0]
    assert numbers.judge(done.text, 312) == "correct"
    size = len(step.dag.top)
    assert len(step.dag.passing) == size and step.dag.path[0] == 0 and step.dag.path[-1] == size - 1
    assert len(step.tokens) == len(step.dag.path) - 1 and step.tokens[-1] == 2  # </s> from the last vertex
    assert all(len(t) == 5 for t in step.dag.top_texts) and step.dag.passing[0] == 1.0
    assert all(0 <= a < b < size and p >= dag.EDGE_FLOOR for a, b, p in step.dag.edges)


def test_the_nat_baseline_decodes_in_one_pass(run_engine):
    _, steps, done = run_engine(prompt="deux cent quarante-trois", model="tiny-numbers-nat", method="dag")
    assert done.status == "finished" and steps[0].dag.path == list(range(len(steps[0].dag.top)))


def test_wrong_models_and_parameters_are_clear_errors(run_engine):
    with pytest.raises(PlaygroundError, match="needs a non-autoregressive translator.*'tiny-code' is a causal LM"):
        run_engine(prompt="x", model="tiny-code", method="dag")
    with pytest.raises(PlaygroundError, match="'tiny-numbers-dat' is a non-autoregressive.*methods that run it: dag"):
        run_engine(prompt="un", model="tiny-numbers-dat", method="autoregressive")
    started, _, done = run_engine(prompt="un", model="tiny-numbers-ar", method="gad")  # its drafter by default
    assert started.draft == "tiny-numbers-dat-kd" and done.status == "finished"
    with pytest.raises(PlaygroundError, match="as its draft; 'tiny-numbers-ar' is an autoregressive"):
        run_engine(prompt="un", model="tiny-numbers-ar", method="gad", draft="tiny-numbers-ar")
    with pytest.raises(PlaygroundError, match="decodes greedily only"):
        run_engine(prompt="un", model="tiny-numbers-dat", method="dag", temperature=0.7)
    with pytest.raises(PlaygroundError, match="strategy must be one of"):
        run_engine(prompt="un", model="tiny-numbers-dat", method="dag", params={"strategy": "best"})
    with pytest.raises(PlaygroundError, match="reads at most 64"):
        run_engine(prompt="un " * 80, model="tiny-numbers-dat", method="dag")


def test_an_encoder_decoder_writes_at_most_its_decoder_positions(run_engine):
    *_, done = run_engine(prompt="un", model="tiny-numbers-ar", method="autoregressive", max_new_tokens=500,
                          stop_at_eos=False)
    assert done.status == "finished" and len(done.token_ids) == 63  # 64 positions, the start token first


def test_unknown_words_still_translate_to_something(run_engine):
    *_, done = run_engine(prompt="<b>bonjour</b> & trois", model="tiny-numbers-dat", method="dag")
    assert done.status == "finished"


def test_generate_and_bench_on_the_command_line(run_cli, tmp_path):
    db = tmp_path / "runs.db"
    out = run_cli("generate", "--model", "tiny-numbers-dat", "--method", "dag", "--prompt", "trois cent douze",
                  "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    assert numbers.judge(json.loads(out.stdout)["text"], 312) == "correct"
    out = run_cli("generate", "--model", "tiny-numbers-ar", "--method", "gad", "--draft", "tiny-numbers-dat",
                  "--prompt", "trois cent douze", "--db", db)
    assert out.returncode == 0 and numbers.judge(out.stdout.strip(), 312) == "correct", out.stderr
    out = run_cli("bench", "--model", "tiny-numbers-ar", "--draft", "tiny-numbers-dat-kd", "--prompts", "numbers",
                  "--limit", "6", "--max-new-tokens", "32", "--json", "--methods",
                  "autoregressive,gad,dag@tiny-numbers-dat:strategy=viterbi,dag@tiny-numbers-nat")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["methods"]
    assert rows["gad"]["identical_to_baseline"] is True
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["bleu"] <= 100 and 0 <= row["mixed"] <= 1
        assert row["latency_ms"] > 0


# ---------- gad on random encoder-decoders of several architectures ----------

def _seq2seq(arch: str, vocab: int, seed: int):
    from transformers import (
        AutoModelForSeq2SeqLM,
        BartConfig,
        MarianConfig,
        PegasusConfig,
        T5Config,
    )
    torch.manual_seed(seed)
    ids = dict(vocab_size=vocab, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    small = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=64,
                 init_std=0.2)
    config = {"bart": lambda: BartConfig(**small, **ids),
              "marian": lambda: MarianConfig(**small, **ids),
              "pegasus": lambda: PegasusConfig(**small, **ids),
              "t5": lambda: T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                                     initializer_factor=3.0, **ids)}[arch]()
    return AutoModelForSeq2SeqLM.from_config(config).eval()


@pytest.fixture(scope="module")
def random_pairs(tmp_path_factory):
    from playground.training.train_dag import CONFIGS, build_model, load_tokenizer
    tok = load_tokenizer()
    root = tmp_path_factory.mktemp("seq2seq")
    torch.manual_seed(0)
    draft = build_model(CONFIGS["dat"], len(tok)).eval()
    draft.save_pretrained(root / "dat")
    tok.save_pretrained(root / "dat")
    for arch in SEQ2SEQ_ARCHS:
        _seq2seq(arch, len(tok), seed=1).save_pretrained(root / arch)
        tok.save_pretrained(root / arch)
    return root


@pytest.mark.parametrize("arch", SEQ2SEQ_ARCHS)
def test_gad_equals_autoregressive_greedy_on_random_models(run_engine, random_pairs, arch):
    for prompt in ("trois cent douze", "mille", "neuf cent quatre-vingt-dix-neuf mille neuf"):
        *_, ar = run_engine(prompt=prompt, model=str(random_pairs / arch), method="autoregressive",
                            max_new_tokens=24, stop_at_eos=False)
        *_, gad = run_engine(prompt=prompt, model=str(random_pairs / arch), method="gad",
                                   draft=str(random_pairs / "dat"), max_new_tokens=24, stop_at_eos=False)
        assert gad.token_ids == ar.token_ids and len(ar.token_ids) == 24, (arch, prompt)


def test_gad_without_a_draft_on_a_model_with_no_default_drafter_says_so(run_engine, random_pairs):
    with pytest.raises(PlaygroundError, match="needs a draft model"):
        run_engine(prompt="un", model=str(random_pairs / "bart"), method="gad")


def test_french_phrases_parse_back_to_their_number():
    for n in [*range(0, 1200), 80_000, 200_080, 999_999, 701_071, 180_180]:
        assert numbers.parse_french(numbers.french(n)) == n
    assert numbers.parse_french("  Trois  cent douze ") == 312
    for other in ("trois cent hello", "cent cent", "mille mille", "quatre-vingt", "", "deux un"):
        assert numbers.parse_french(other) is None, other
