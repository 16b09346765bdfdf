"""The engine: validate a request, load the models, run a method, and hand out typed events. No UI, no SQL."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace

from playground import hosted
from playground.errors import PlaygroundError
from playground.events import Event, RunFinished, RunStarted, Stats, Step, output_ids
from playground.methods import METHODS, DecodeConfig, get_method
from playground.models import loading as models
from playground.runtime import lean, lean_masked
from playground.runtime.dag_graph import DagRunner
from playground.runtime.lm import CachedLM, CachedSeq2Seq
from playground.runtime.sampling import Sampling

MAX_NEW_TOKENS = 2048
RUNTIMES = ("auto", "lean", "transformers")  # auto: lean where the model allows it, transformers elsewhere
MAX_PROMPT_CHARS = 50_000


@dataclass
class Request:
    prompt: str
    model: str = models.DEFAULT_MODEL
    method: str = "autoregressive"
    draft: str | None = None
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    params: dict = field(default_factory=dict)  # method parameters, raw (strings are parsed)
    stop_at_eos: bool = True
    runtime: str = "auto"


@dataclass
class Prepared:
    request: Request
    target: models.LoadedModel
    draft: models.LoadedModel | None
    prompt_ids: list[int]
    cfg: DecodeConfig
    params: dict
    runtime: str = "transformers"  # what runs the causal LMs: lean or transformers


def _check_range(name: str, value, low, high) -> None:
    if not (low <= value <= high):
        raise PlaygroundError(f"{name} must be between {low} and {high}, got {value}")


def _check_whole(name: str, value) -> None:
    """An integer setting must be given as one: int(1.5) would quietly run top_k 1 instead of refusing."""
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, float) and value.is_integer()):
        raise PlaygroundError(f"{name} must be a whole number, got {value!r}")


def prepare(req: Request) -> Prepared:
    """Check everything a user can get wrong, before any work starts; raise PlaygroundError with one clear line."""
    method = get_method(req.method)
    params = method.parse_params(req.params or {})
    if not isinstance(req.prompt, str) or not req.prompt.strip():
        raise PlaygroundError("the prompt is empty")
    try:
        req.prompt.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: what Python makes of invalid UTF-8 in argv, or JSON's "\ud800"
        raise PlaygroundError("the prompt is not valid text: it holds invalid UTF-8 (a lone surrogate)") from None
    if len(req.prompt) > MAX_PROMPT_CHARS:
        raise PlaygroundError(f"the prompt has {len(req.prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    hosted.check("prompt characters", len(req.prompt))
    for name in ("max_new_tokens", "top_k", "seed"):
        _check_whole(name, getattr(req, name))
    _check_range("max_new_tokens", req.max_new_tokens, 1, MAX_NEW_TOKENS)
    hosted.check("max_new_tokens", req.max_new_tokens)
    params = hosted.lowered_defaults(params, set(req.params or {}))
    hosted.check_params(params)
    _check_range("temperature", req.temperature, 0.0, 10.0)
    if 0 < req.temperature < 1e-3:  # logits / a tiny temperature overflow to inf: the sampler fails mid-run
        raise PlaygroundError(f"temperature must be 0 (greedy) or at least 0.001, got {req.temperature}")
    _check_range("top_k", req.top_k, 0, 1_000_000)
    _check_range("seed", req.seed, -(2**63), 2**64 - 1)  # what torch.Generator.manual_seed takes
    if not (0.0 < req.top_p <= 1.0):
        raise PlaygroundError(f"top_p must be in (0, 1], got {req.top_p}")
    target = models.load(req.model)
    check_kind(method, target, method.kinds, "model")
    if method.check_model:
        method.check_model(params, target.model)
    wants_draft = method.needs_draft or (method.uses_draft is not None and method.uses_draft(params))
    draft_name = None
    if wants_draft:
        draft_name = models.draft_for(target.name, req.draft, method.draft_kinds[0])
    if method.needs_draft and not draft_name:
        raise PlaygroundError(f"method {method.name} needs a draft model (--draft NAME)")
    draft = models.load(draft_name) if draft_name else None
    if draft:
        check_kind(method, draft, method.draft_kinds, "draft")
        models.check_pair(target, draft)
    prompt_ids = target.tokenizer(req.prompt)["input_ids"]
    for m in (target, draft) if draft else (target,):  # the draft reads every committed token too
        limit = m.max_positions
        if limit and m.kind in ("seq2seq", "dag") and len(prompt_ids) > limit:  # the output has its own positions
            raise PlaygroundError(f"the prompt is {len(prompt_ids)} tokens; {m.name!r} reads at most {limit}")
        if limit and m.kind in ("causal", "masked") and len(prompt_ids) + req.max_new_tokens > limit:
            room = limit - len(prompt_ids)
            raise PlaygroundError(
                f"the prompt is {len(prompt_ids)} tokens; with max_new_tokens {req.max_new_tokens} it exceeds the "
                f"{limit}-token context of {m.name!r}: "
                + (f"set max_new_tokens to {room} or less" if room > 0 else "shorten the prompt"))
    eos = target.tokenizer.eos_token_id if req.stop_at_eos else None
    sampling = Sampling(temperature=float(req.temperature), top_k=int(req.top_k), top_p=float(req.top_p),
                        seed=int(req.seed))
    if not sampling.greedy and method.greedy_only and method.greedy_only(params):
        raise PlaygroundError(f"method {method.name} with these parameters decodes greedily only: set temperature 0")
    budget = int(req.max_new_tokens)
    if target.kind == "seq2seq" and target.max_positions:  # the decoder has its own positions, start token first;
        budget = min(budget, target.max_positions - 1)      # a translation ends far sooner (at end-of-text)
    cfg = DecodeConfig(max_new_tokens=budget, sampling=sampling, eos_id=eos,
                       mask_id=target.tokenizer.mask_token_id)
    return Prepared(req, target, draft, prompt_ids, cfg, params, pick_runtime(req.runtime, target, draft))


def pick_runtime(asked: str, *loaded: models.LoadedModel | None) -> str:
    """The runtime a run gets: `lean` for causal Llama-family models and EuroBERT masked LMs (auto or asked),
    `transformers` otherwise; asking for `lean` where it cannot run is an error."""
    if asked not in RUNTIMES:
        raise PlaygroundError(f"unknown runtime {asked!r} (available: {', '.join(RUNTIMES)})")
    if asked == "transformers":
        return asked
    why = None
    for i, m in enumerate(filter(None, loaded)):
        if m.kind == "causal":
            reason = lean.supports(m.model)
        elif m.kind == "masked":  # a masked draft lean cannot run is read through transformers beside it (wrap)
            reason = lean_masked.supports(m.model) if i == 0 else None
        else:  # a feature head drafts on the target's runner, whichever it is
            reason = None if m.kind == "feature" else "it runs causal and EuroBERT masked LMs only"
        why = why or (reason and f"{m.name!r}: {reason}")
    if why and asked == "lean":
        raise PlaygroundError(f"the lean runtime cannot run this: {why}; use --runtime transformers")
    return "transformers" if why else "lean"


def check_kind(method, loaded: models.LoadedModel, kinds: tuple[str, ...], role: str) -> None:
    """A method runs only on the kinds of model it was written for: say which, and what was given instead."""
    if loaded.kind not in kinds:
        wanted = " or ".join(f"{models.KINDS[k][0]} (such as {models.KINDS[k][1]})" for k in kinds)
        fitting = [m.name for m in METHODS.values() if loaded.kind in m.kinds]
        hint = f"; methods that run it: {', '.join(fitting)}" if role == "model" and fitting else ""
        raise PlaygroundError(f"method {method.name} needs {wanted} as its {role}; {loaded.name!r} is "
                              f"{models.KINDS[loaded.kind][0]}{hint}")


_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {id: text}, filled as ids come


def token_texts(tokenizer, ids: list[int]) -> list[str]:
    """The text of each token on its own, remembered per tokenizer: ids not seen before are decoded in one batched
    call (a long prompt has thousands of tokens, a DAG's top tokens repeat a few dozen ids, every step repeats some)."""
    known = _TEXTS.setdefault(tokenizer, {})
    new = [i for i in dict.fromkeys(ids) if i not in known]
    if new:
        known.update(zip(new, tokenizer.batch_decode([[i] for i in new])))
    return [known[i] for i in ids]


def nested_texts(tokenizer, rows: list[list[int]]) -> list[list[str]]:
    """token_texts of each row, in one call."""
    flat = iter(token_texts(tokenizer, [i for row in rows for i in row]))
    return [[next(flat) for _ in row] for row in rows]


def wrap(model, runtime: str = "transformers"):
    """The runner a method gets for a model: a KV-cached LM (lean or transformers), a cached encoder-decoder, or a
    DAG runner."""
    kind = models.kind_of(model)
    if kind == "dag":
        return DagRunner(model)
    if kind == "seq2seq":
        return CachedSeq2Seq(model)
    if kind == "feature":
        return model  # a feature head drafts on the target's runner: the method wraps it (methods/eagle.py)
    if runtime == "lean" and kind == "masked" and lean_masked.supports(model) is None:  # its denoiser calls it
        return CachedLM(lean_masked.lean_masked(model))
    return lean.LeanLM(model) if runtime == "lean" and kind == "causal" else CachedLM(model)


def run_events(prep: Prepared, cancel: threading.Event | None = None) -> Iterator[Event]:
    """RunStarted, one Step per verification, RunFinished. Stops cleanly (status 'cancelled') when `cancel` is set.

    Stats time only the method itself: what consumers of the events do between steps is not counted.
    """
    req, method = prep.request, get_method(prep.request.method)
    settings = {"max_new_tokens": prep.cfg.max_new_tokens, **asdict(prep.cfg.sampling),
                "stop_at_eos": req.stop_at_eos, "runtime": prep.runtime, **prep.params}
    yield RunStarted(method=method.name, model=prep.target.name, draft=prep.draft.name if prep.draft else None,
                     prompt=req.prompt, prompt_ids=list(prep.prompt_ids), settings=settings,
                     prompt_texts=token_texts(prep.target.tokenizer, prep.prompt_ids))
    target = wrap(prep.target.model, prep.runtime)
    draft = wrap(prep.draft.model, prep.runtime) if prep.draft else None
    steps: list[Step] = []
    status, error, method_s = "finished", None, 0.0
    decoding = None
    try:
        decoding = method.decode(target, draft, list(prep.prompt_ids), prep.cfg, **prep.params)
        while True:
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            start = time.perf_counter()
            step = next(decoding, None)
            spent = time.perf_counter() - start
            if step is None:
                break
            method_s += spent
            step.other_s = max(0.0, spent - step.draft_s - step.target_s)  # the methods leave it to here
            step.texts = token_texts(prep.target.tokenizer, step.tokens)  # events carry text: replay needs no model
            step.drafted_texts = token_texts(prep.target.tokenizer, step.drafted)
            if step.tree is not None:
                step.tree.texts = token_texts(prep.target.tokenizer, step.tree.tokens)
            if step.canvas is not None:
                step.canvas.texts = token_texts(prep.target.tokenizer, step.canvas.guess)
            if step.dag is not None:
                step.dag.top_texts = nested_texts(prep.target.tokenizer, step.dag.top)
            steps.append(step)
            yield step
    except Exception as exc:  # a model failing mid-run: report it as the run's outcome, keep what was made
        status, error = "error", f"{type(exc).__name__}: {exc}"
    finally:
        if decoding is not None:
            decoding.close()
    token_ids = output_ids(steps, prep.cfg.eos_id)
    text = prep.target.tokenizer.decode(token_ids, skip_special_tokens=True)
    yield RunFinished(status=status, text=text, token_ids=token_ids, stats=Stats.from_steps(steps, method_s),
                      error=error)


def generate(req: Request, cancel: threading.Event | None = None) -> Iterator[Event]:
    """Validate and run: the one entry point for the CLI, the app and the benchmarks."""
    return run_events(prepare(req), cancel)


_warmed: set[str] = set()
WARM_UP_TOKENS = 4


def warm_up(req: Request) -> bool:
    """A short unrecorded run of `req` (its method, models and parameters), once per process for each such setting:
    a method's first forwards in a process cost more than later ones (lazy initialisation, first calls of each
    kernel), which would count against whichever run comes first. Returns whether it ran; a bad request raises the
    PlaygroundError the real run would."""
    key = repr((req.method, req.model, req.draft, req.runtime, sorted((req.params or {}).items())))
    if key in _warmed:
        return False
    for _ in generate(replace(req, max_new_tokens=min(req.max_new_tokens, WARM_UP_TOKENS))):
        pass
    _warmed.add(key)
    return True
