"""Shared fixtures: tiny random causal LMs of four architectures, saved like user models, and CLI helpers.

Every model is built from a config (no downloads), with the shipped tokenizer, and saved with `save_pretrained` into a
session temporary folder, so tests load it through `playground.models.load(path)` exactly as a user's model is loaded.

Target: 3 layers x 64 hidden. Draft: 1 layer, a noisy copy of the target's embeddings, first layer, final norm and
head (different seed). The target's later layers write to the residual stream with a reduced scale, so the draft is
a rough approximation of the target: greedy acceptance lands around 0.3-0.5, i.e. many drafts are accepted AND many
are rejected, which is what makes the lossless tests meaningful (KV rollback happens all the time).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

# Before torch / transformers are imported anywhere: no Hub traffic (an unknown name must fail fast, not retry for a
# minute), and one thread per process (the machine is small and shared; tiny models are faster on one thread).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests"):  # `import playground` and `from conftest import PROMPTS` in any import mode
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


class _DeprecationLogsFail(logging.Handler):
    """transformers reports some deprecations through its logger instead of `warnings` (reading an output's old
    `past_key_values`, a renamed `from_pretrained` argument), out of reach of pyproject's filterwarnings: raise them
    where our call made them, as that does for warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        if "deprecated" in record.getMessage().lower():
            raise DeprecationWarning(f"{record.name}: {record.getMessage()}")


logging.getLogger("transformers").addHandler(_DeprecationLogsFail(logging.WARNING))

TOKENIZER_DIR = ROOT / "assets" / "tokenizer"
SHIPPED_DIR = ROOT / "assets" / "models"
VOCAB = 4096
CONTEXT = 256          # max positions of the tiny models (GPT-2 has learned absolute positions: a hard limit)
DRAFT_NOISE = 0.02     # relative std of the noise added to the draft's copied weights
LATER_LAYER_SCALE = 0.15  # scale of the residual writes of target layers >= 1 (so one layer approximates three)
ARCHS = ("llama", "gpt2", "qwen2", "neox")
PROMPTS = (
    "def main(args):\n    return",
    "import os\nclass Foo:",
    "# compute the sum of a list\nfor x in",
)

# Output projections of each block (the writes into the residual stream), over the four architectures.
_RESIDUAL_WRITES = ("self_attn.o_proj.", "mlp.down_proj.", "attn.c_proj.", "mlp.c_proj.", "attention.dense.",
                    "mlp.dense_4h_to_h.")


def _config(arch: str, layers: int, hidden: int = 64, vocab: int = VOCAB, positions: int = CONTEXT):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    # A large init std: a random model with the default 0.02 repeats one token forever, which makes identity
    # tests weak. The tokenizer's special ids: <|endoftext|> = 0 (bos and eos), <|pad|> = 1.
    common = dict(vocab_size=vocab, bos_token_id=0, eos_token_id=0, pad_token_id=1, initializer_range=0.2)
    if arch == "llama":
        return LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions,
                           tie_word_embeddings=False, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=layers, n_head=4, n_positions=positions, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions,
                           tie_word_embeddings=False, **common)
    if arch == "neox":
        return GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                             num_attention_heads=4, max_position_embeddings=positions, **common)
    raise ValueError(arch)


def _random_model(config, seed: int):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()


def _save(model, folder: Path) -> str:
    from transformers import AutoTokenizer

    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(folder)
    return str(folder)


@torch.no_grad()
def build_pair(arch: str, root: Path) -> tuple[str, str]:
    """Save a target (3 layers) and its draft (1 layer, noisy copy) under root; return both folders."""
    target = _random_model(_config(arch, layers=3), seed=0)
    for name, weight in target.named_parameters():
        layer = re.search(r"\.(\d+)\.", name)
        if layer and int(layer.group(1)) >= 1 and any(w in name for w in _RESIDUAL_WRITES):
            weight.mul_(LATER_LAYER_SCALE)
    draft = _random_model(_config(arch, layers=1), seed=1)
    target_state, gen = target.state_dict(), torch.Generator().manual_seed(1)
    for name, weight in draft.state_dict().items():
        source = target_state.get(name)
        if source is not None and source.shape == weight.shape and weight.is_floating_point():
            scale = float(source.float().std()) if source.numel() > 1 else 0.0
            weight.copy_(source + DRAFT_NOISE * scale * torch.randn(weight.shape, generator=gen))
    return _save(target, root / f"{arch}-target"), _save(draft, root / f"{arch}-draft")


@dataclass(frozen=True)
class Pair:
    """A target and a draft that share a vocabulary, by the names `playground.models.load` takes."""
    arch: str
    target: str
    draft: str


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


_pairs: dict[str, Pair] = {}


def _arch_pair(arch: str, root: Path) -> Pair:
    if arch not in _pairs:
        _pairs[arch] = Pair(arch, *build_pair(arch, root))
    return _pairs[arch]


@pytest.fixture(scope="session", params=ARCHS)
def arch_pair(request, model_root) -> Pair:
    """Each of the four architectures in turn."""
    return _arch_pair(request.param, model_root)


@pytest.fixture(scope="session")
def llama_pair(model_root) -> Pair:
    """The one pair used where the architecture does not matter (recorder, CLI, sampling)."""
    return _arch_pair("llama", model_root)


@pytest.fixture(scope="session")
def gpt2_pair(model_root) -> Pair:
    return _arch_pair("gpt2", model_root)


def shipped_available() -> bool:
    return (SHIPPED_DIR / "tiny-code" / "config.json").is_file()


@pytest.fixture(scope="session")
def shipped_pair() -> Pair:
    """The shipped tiny-code / tiny-code-draft, by their shipped names. Skipped only while they are not trained yet."""
    if not shipped_available():
        pytest.skip("assets/models/tiny-code/config.json is missing (the shipped models are not trained yet)")
    return Pair("shipped", "tiny-code", "tiny-code-draft")


@pytest.fixture(scope="session", params=ARCHS + ("shipped",))
def any_pair(request, model_root) -> Pair:
    """The four architectures, then the shipped pair."""
    if request.param == "shipped":
        return request.getfixturevalue("shipped_pair")
    return _arch_pair(request.param, model_root)


@pytest.fixture(scope="session")
def wide_vocab_draft(model_root) -> str:
    """A 1-layer Llama with 5000 output ids: not a valid draft for a 4096-id target."""
    model = _random_model(_config("llama", layers=1, vocab=5000), seed=2)
    return _save(model, model_root / "llama-vocab5000")


@pytest.fixture(scope="session")
def short_context_draft(model_root) -> str:
    """A GPT-2 draft with the right vocabulary but only 32 positions: it cannot follow a long run of the target."""
    model = _random_model(_config("gpt2", layers=1, positions=32), seed=3)
    return _save(model, model_root / "gpt2-ctx32-draft")


def build_head(target: str, root: Path) -> str:
    """A randomly initialised EAGLE head for the target folder `target`, saved beside it with the target's tokenizer.
    Llama-family targets give it their own shape (EagleConfig.for_target); others (GPT-2) get one as wide as them."""
    from playground.models.eagle import EagleConfig, EagleHead
    from playground.models.loading import load

    config = load(target).model.config
    try:
        head_config = EagleConfig.for_target(config, target)
    except ValueError:  # not a Llama-family shape: the head only has to be as wide as the target's features
        head_config = EagleConfig(hidden_size=config.hidden_size, intermediate_size=2 * config.hidden_size,
                                  num_attention_heads=4, num_key_value_heads=4, head_dim=config.hidden_size // 4,
                                  max_position_embeddings=CONTEXT, vocab_size=VOCAB, target=target)
    torch.manual_seed(0)
    return _save(EagleHead(head_config).eval(), root / f"{Path(target).name}-head")


_heads: dict[str, str] = {}


@pytest.fixture(scope="session")
def random_head(model_root):
    """random_head(pair) -> the folder of a random EAGLE head for pair.target (built once per session)."""
    def head(pair: Pair) -> str:
        if pair.target not in _heads:
            _heads[pair.target] = build_head(pair.target, model_root)
        return _heads[pair.target]

    return head


# ------------------------------------------------------------ running things


def _collect(events):
    """Split a run's events into (RunStarted, [Step], RunFinished)."""
    from playground.events import RunFinished, RunStarted, Step

    started, steps, finished = None, [], None
    for ev in events:
        if isinstance(ev, RunStarted):
            assert started is None and not steps, "RunStarted must come first, once"
            started = ev
        elif isinstance(ev, Step):
            assert started is not None and finished is None
            steps.append(ev)
        elif isinstance(ev, RunFinished):
            assert finished is None
            finished = ev
        else:
            raise AssertionError(f"unexpected event {ev!r}")
    assert started is not None and finished is not None
    return started, steps, finished


@pytest.fixture(scope="session")
def run_engine():
    """run_engine(**Request fields) -> (RunStarted, steps, RunFinished) through `playground.engine.generate`."""
    from playground.engine import Request, generate

    def run(**fields):
        return _collect(generate(Request(**fields)))

    return run


def _cli_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PLAYGROUND_DB", None)
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(*args, cwd=ROOT, env={extra vars}) -> CompletedProcess of `python -m playground ARGS` (text);
    an argument given as bytes is passed as those bytes."""

    def run(*args, cwd=None, env=None, timeout=240):
        argv = [a if isinstance(a, bytes) else str(a) for a in args]  # bytes: an argument that is not UTF-8
        return subprocess.run([sys.executable, "-m", "playground", *argv], cwd=cwd or ROOT,
                              env=_cli_env(env), capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def main(capfd):
    """main(*args) -> (exit status, stdout, stderr) of the CLI in this process, file descriptors captured."""
    from playground import cli

    def run(*args):
        capfd.readouterr()
        status = cli.main([str(a) for a in args])
        out, err = capfd.readouterr()
        return status, out, err

    return run


def one_error_line(stderr: str) -> str:
    """The one line a refused command prints: 'error: ...', and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def _stored_runs(db: Path) -> list[tuple]:
    """(id, status) of every run stored in db; [] when the file or its tables do not exist."""
    if not Path(db).exists():
        return []
    with closing(sqlite3.connect(db)) as conn:
        try:
            return conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # no table: nothing was ever stored
            return []


@pytest.fixture(scope="session")
def collect():
    """collect(events) -> (RunStarted, [Step], RunFinished), checking the order of events."""
    return _collect


@pytest.fixture(scope="session")
def stored_runs():
    """stored_runs(db_path) -> [(id, status)] read with plain sqlite3."""
    return _stored_runs


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (tests/test_browser.py, tests/test_share_browser.py);
    skipped without either."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from playground.bench.app_timing import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# A deprecation that the app's own calls trigger (gradio, plotly, transformers) is printed in its log, out of reach of
# pyproject's filterwarnings: the app runs with every warning shown once per place, and its log must name none of
# these categories. (gradio's queue passes pandas options that pandas 3 deprecates, from gradio's own code: that is
# a Pandas4Warning, not matched here.)
DEPRECATION = re.compile(r"^\S+:\d+: (\w*(?:DeprecationWarning|FutureWarning): .*)$", re.MULTILINE)


@contextmanager
def serving_app(db: Path, env: dict | None = None):
    """(url, db) of the app (app.py) serving the run database `db` on a free port, `env` added to its environment,
    stopped afterwards; its log (beside db) must name no deprecation."""
    from playground.bench.app_timing import serve

    with open(db.with_suffix(".log"), "w") as log:
        try:
            proc, url = serve(ROOT, db, log, wait_s=90, env={"PYTHONWARNINGS": "default", **(env or {})})
        except RuntimeError as exc:
            pytest.fail(f"{exc}: {db.with_suffix('.log').read_text()[-2000:]}")
        try:
            yield url, db
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    deprecations = DEPRECATION.findall(db.with_suffix(".log").read_text())
    assert not deprecations, "the app triggered deprecations:\n" + "\n".join(sorted(set(deprecations)))
