"""Model loading: shipped tiny models by name, anything else through `from_pretrained` (Hub id or local path)."""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from playground import hosted
from playground.errors import PlaygroundError
from playground.models.dat import (  # importing it registers the DA-Transformer with the Auto classes
    DatConfig,
    is_dat,
)
from playground.models.eagle import EagleConfig, is_eagle  # registers the EAGLE head with the Auto classes

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MODELS_DIR = ASSETS / "models"
DEFAULT_MODEL = "tiny-code"
DEFAULT_DRAFT = "tiny-code-draft"
# the draft a method that takes one gets when none is named: gad's drafter learned the AR model's own renderings
DEFAULT_DRAFTS = {DEFAULT_MODEL: DEFAULT_DRAFT, "tiny-code-deep": "tiny-code-deep-draft",
                  "tiny-numbers-ar": "tiny-numbers-dat-kd"}
DEFAULT_HEADS = {DEFAULT_MODEL: "tiny-code-eagle"}  # the feature head a feature-drafting method gets
DEFAULT_DIFFUSION_DRAFTS = {DEFAULT_MODEL: "tiny-code-diffusion"}  # the masked-diffusion draft (speculative_diffusion)
DEVICE_ENV = "PLAYGROUND_DEVICE"  # where models run: cpu (the default), cuda, cuda:1, mps


def check_device(name: str) -> torch.device:
    """The torch device called `name`, if this machine has it; a clear error otherwise."""
    try:
        device = torch.device((name or "cpu").strip())
    except RuntimeError:
        raise PlaygroundError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps") from None
    have = {"cpu": True, "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
            "mps": torch.backends.mps.is_available()}.get(device.type, False)
    if not have:
        raise PlaygroundError(f"device {name!r} is not available on this machine (use cpu)")
    if device.type == "cuda" and device.index is None:  # compare equal with where a model's weights say they are
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def device() -> torch.device:
    """Where models are loaded and run: ${PLAYGROUND_DEVICE}, cpu by default. Methods feed a model on its own
    device and read its logits back on the CPU, so everything past the forward pass is the same everywhere."""
    return check_device(os.environ.get(DEVICE_ENV, "cpu"))


def synchronize() -> None:
    """Wait for the device's queued work: a timer read on a GPU must not run ahead of the kernels it times."""
    dev = device()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def use_device(name: str) -> None:
    """Run models on `name` from now on (models already loaded elsewhere are loaded again when next asked for)."""
    check_device(name)
    os.environ[DEVICE_ENV] = name


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: object

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    @property
    def vocab_size(self) -> int:
        head = self.model.get_output_embeddings()
        return head.weight.shape[0] if head is not None else self.model.config.vocab_size

    @property
    def max_positions(self) -> int | None:
        return config_positions(self.model.config)

    @property
    def kind(self) -> str:
        return kind_of(self.model)


KINDS = {  # what each kind of model is, and a shipped one, for error messages
    "causal": ("a causal LM", "tiny-code"),
    "masked": ("a masked-diffusion model", "tiny-code-diffusion"),
    "seq2seq": ("an autoregressive encoder-decoder", "tiny-numbers-ar"),
    "dag": ("a non-autoregressive translator (DA-Transformer or NAT)", "tiny-numbers-dat"),
    "feature": ("a feature-drafting head (EAGLE)", "tiny-code-eagle"),
}


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def is_masked_lm(model) -> bool:
    """A masked LM reads the whole sequence both ways: the diffusion method needs one, causal methods must not get
    one."""
    return type(model).__name__.endswith("ForMaskedLM")


def kind_of(model: torch.nn.Module) -> str:
    """causal / masked / seq2seq / dag: which methods can run the model."""
    if is_dat(model):
        return "dag"
    if is_eagle(model):
        return "feature"
    if getattr(model.config, "is_encoder_decoder", False):
        return "seq2seq"
    return "masked" if is_masked_lm(model) else "causal"


# the transformers class that loads each kind
AUTO_CLASSES = {"dag": "AutoModel", "feature": "AutoModel", "seq2seq": "AutoModelForSeq2SeqLM",
                "masked": "AutoModelForMaskedLM", "causal": "AutoModelForCausalLM"}


def config_kind(config) -> str:
    """The kind of model a config describes, before any weights are read."""
    if isinstance(config, DatConfig):
        return "dag"
    if isinstance(config, EagleConfig):
        return "feature"
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    return "masked" if any(a.endswith("ForMaskedLM") for a in config.architectures or []) else "causal"


@functools.cache
def shipped_config(name: str):
    """The config of the shipped model `name` (read once), or None for any other name."""
    from transformers import AutoConfig
    path = shipped_models().get((name or "").strip())
    return AutoConfig.from_pretrained(path) if path else None


def shipped_kind(name: str) -> str | None:
    """The kind of the shipped model `name`, or None for any other name."""
    cfg = shipped_config(name)
    return config_kind(cfg) if cfg is not None else None


def config_positions(cfg) -> int | None:
    """The positions a model reads: a causal or masked LM's context, an encoder-decoder's (each side has as many),
    a DA-Transformer's source."""
    return (getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
            or getattr(cfg, "max_source_positions", None))


def shipped_room(name: str) -> int | None:
    """The most new tokens the shipped model `name` can write: its context less one prompt token (an
    encoder-decoder: its decoder's positions less the start token). None for other names, and for a
    DA-Transformer, whose output length its graph decides."""
    cfg = shipped_config(name)
    positions = config_positions(cfg) if cfg is not None else None
    return positions - 1 if positions and config_kind(cfg) != "dag" else None


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every model shipped in assets/models (read again only when the folder changes: every run
    asks, and a scan is a dozen file-system calls)."""
    try:
        changed = MODELS_DIR.stat().st_mtime_ns
    except OSError:
        return {}
    return dict(_scan_models(MODELS_DIR, changed))


@functools.lru_cache(maxsize=8)
def _scan_models(folder: Path, changed: int) -> tuple[tuple[str, Path], ...]:
    return tuple((d.name, d) for d in sorted(folder.iterdir()) if (d / "config.json").is_file())


def describe_models() -> list[dict]:
    rows = []
    for name, path in shipped_models().items():
        cfg = json.loads((path / "config.json").read_text())
        facts_path = path / "training.json"
        facts = json.loads(facts_path.read_text()) if facts_path.is_file() else {}
        layers = cfg.get("num_hidden_layers") or (  # an encoder-decoder: encoder + decoder
            f"{cfg['encoder_layers']}+{cfg['decoder_layers']}" if "encoder_layers" in cfg else None) or (
            1 if cfg.get("model_type") == EagleConfig.model_type else None)  # a feature head: one layer
        rows.append({"name": name, "path": str(path), "architecture": (cfg.get("architectures") or ["?"])[0],
                     "layers": layers, "hidden_size": cfg.get("hidden_size") or cfg.get("d_model"),
                     "parameters": facts.get("parameters"), "heldout_loss": facts.get("heldout_loss")})
    return rows


def resolve(name: str) -> str:
    """A shipped name becomes its folder; anything else (Hub id, local path) is passed on as it is."""
    name = (name or "").strip()
    if not name:
        raise PlaygroundError("no model given")
    return str(shipped_models().get(name, name))


# What a Hugging Face Hub repo id looks like: NAME or OWNER/NAME, no '..', no leading '/', '.' or '~'
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", re.ASCII)


def canonical(name: str) -> str:
    """One name per model however it is spelled, so that every spelling shares one loaded copy: a shipped model's
    name (also when given as a path to its folder), a local model folder's absolute path with links, '.' and '..'
    resolved, anything else (a Hub id) as given."""
    name = (name or "").strip()
    if not name:
        raise PlaygroundError("no model given")
    if hosted.active():
        return hosted_name(name)
    shipped = shipped_models()
    if name in shipped or not (Path(name) / "config.json").is_file():
        return name
    folder = Path(name).resolve()
    return next((n for n, path in shipped.items() if path.resolve() == folder), str(folder))


def hosted_name(name: str) -> str:
    """Hosted mode's one name for `name`: a shipped model's, or an allowed Hub id as the allow-list spells it (the
    Hub reads ids without regard to case). Anything else, a local path above all, gets one message whatever is on
    the disk: the file system is never looked at."""
    if name in shipped_models():
        return name
    allowed = hosted.allowed_models()
    if name.lower() in allowed:
        return allowed[name.lower()]
    listed = ", ".join(allowed.values()) or "none"
    shown = name if len(name) <= 80 else name[:80] + "…"
    raise PlaygroundError(f"cannot load model {shown!r}: this playground is public (hosted mode) and loads only "
                          f"the shipped models ({', '.join(shipped_models()) or 'none'}) and the allowed Hub models "
                          f"({listed})")


def draft_for(model: str, draft: str | None = None, kind: str = "causal") -> str | None:
    """The draft a run of `model` gets: `draft` when one is named, else the shipped pairing (DEFAULT_DRAFTS, or
    DEFAULT_HEADS for a method drafting with a feature head, DEFAULT_DIFFUSION_DRAFTS with a diffusion model), found
    however the model is spelled (a path to tiny-code's folder gets tiny-code-draft too); None when there is none."""
    defaults = {"feature": DEFAULT_HEADS, "masked": DEFAULT_DIFFUSION_DRAFTS}.get(kind, DEFAULT_DRAFTS)
    return draft or defaults.get(canonical(model))


def no_such_model(name: str) -> PlaygroundError:
    """The one error for a name that is not a model here: a file, a missing path and a folder without a model all
    get the same words, so the message cannot be used to find out which paths exist on this machine."""
    hub = (", and the Hugging Face Hub cannot be reached from here" if HUB_ID.fullmatch(name) and not hub_reachable()
           else "")  # said for any name a Hub id could be, whether or not a file by that name exists
    return PlaygroundError(f"cannot load model {name!r}: it is not a shipped model "
                           f"({', '.join(shipped_models()) or 'none'}) nor a folder holding a model{hub}")


def where_to_load(name: str) -> str:
    """What from_pretrained is given for the canonical `name`: a shipped model's folder, a local model folder, or
    a Hub id when the Hub can be reached. Any other path is refused here, before from_pretrained reads it (it would
    parse a file such as /etc/passwd as a config and quote it)."""
    shipped = shipped_models()
    if name in shipped:
        return str(shipped[name])
    if hosted.active():  # canonical let through an allowed Hub id only: never read from the disk
        if hub_reachable():
            return name
        raise PlaygroundError(f"cannot load model {name!r}: the Hugging Face Hub cannot be reached from here")
    if (Path(name) / "config.json").is_file():
        return name
    if HUB_ID.fullmatch(name) and not Path(name).exists() and hub_reachable():
        return name
    raise no_such_model(name)


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Can the Hugging Face Hub be reached? Asked once per process, so an offline machine fails fast instead of
    waiting for huggingface_hub's retries on every unknown name."""
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def transposed_weights(model: torch.nn.Module) -> None:
    """Store every linear weight [out, in] transposed in memory (values unchanged, tied weights stay tied).

    A linear layer computes x @ W.T; with W.T contiguous MKL takes its fast path for small batches of rows, where
    with W's own layout it switches, from 16 rows on, to a much slower one: a 16-node draft tree cost 21.5 ms
    to verify instead of 18.3 ms on the 2-core dev machine (docs/BENCHMARKS.md)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.device.type == "cpu":
            module.weight.data = module.weight.data.t().contiguous().t()


_cache: OrderedDict[str, LoadedModel] = OrderedDict()  # canonical name -> model, the least recently used first
_lock = threading.Lock()


def loaded_names() -> list[str]:
    """The models kept loaded, the least recently used first."""
    return list(_cache)


def _keep(name: str, loaded: LoadedModel) -> None:
    """Remember `loaded` as the most recently used; forget the least recently used beyond hosted.max_models() (a run
    still holding one keeps it until it ends)."""
    _cache[name] = loaded
    _cache.move_to_end(name)
    bound = hosted.max_models()
    while bound is not None and len(_cache) > bound:
        _cache.popitem(last=False)


def load(name: str) -> LoadedModel:
    """Load (once per process) a model and its tokenizer, in float32 for CPU inference: a causal LM, a masked LM
    (a diffusion model), an encoder-decoder, or a DA-Transformer (registered with the Auto classes by
    playground.models.dat)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    name, on = canonical(name), device()
    with _lock:
        if name in _cache and _cache[name].device == on:
            _cache.move_to_end(name)
            return _cache[name]
        where = where_to_load(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(where)
            auto = getattr(transformers, AUTO_CLASSES[config_kind(AutoConfig.from_pretrained(where))])
            model, info = auto.from_pretrained(where, dtype=torch.float32, output_loading_info=True)
            model.to(on).eval()
            transposed_weights(model)
        except Exception as exc:  # from_pretrained raises OSError, ValueError, KeyError... all mean "can't load"
            shipped = ", ".join(shipped_models()) or "none"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PlaygroundError(f"cannot load model {name!r} (shipped: {shipped}): {first}") from None
        if info["missing_keys"]:  # from_pretrained only warns, and leaves them random: the model would write noise
            missing = sorted(info["missing_keys"])
            raise PlaygroundError(
                f"cannot load model {name!r}: its checkpoint lacks {len(missing)} of the weights of "
                f"{type(model).__name__} (such as {missing[0]}); it was saved by another version of the model code")
        loaded = LoadedModel(name=name, model=model, tokenizer=tokenizer)
        _keep(name, loaded)
        return loaded


@functools.lru_cache(maxsize=32)
def same_vocab(a, b) -> bool:
    """The two tokenizers map the same strings to the same ids (compared once per pair: each run checks its pair)."""
    return a is b or a.get_vocab() == b.get_vocab()


def check_pair(target: LoadedModel, draft: LoadedModel) -> None:
    """A draft can only propose tokens for a target that reads them the same way: same vocabulary, same ids; a
    feature head only reads features as wide as it was trained on."""
    if draft.kind == "feature" and draft.model.config.hidden_size != getattr(target.model.config, "hidden_size", None):
        raise PlaygroundError(f"head {draft.name!r} reads {draft.model.config.hidden_size}-wide features; "
                              f"{target.name!r} has {getattr(target.model.config, 'hidden_size', '?')}: use the head "
                              f"trained on it (this one was trained on {draft.model.config.target!r})")
    if draft.kind == "feature" and (draft.max_positions or 0) < (target.max_positions or 0):
        raise PlaygroundError(f"head {draft.name!r} reads {draft.max_positions} positions; {target.name!r} has "
                              f"{target.max_positions}: a long run would outgrow the head")
    if target.vocab_size != draft.vocab_size or not same_vocab(target.tokenizer, draft.tokenizer):
        raise PlaygroundError(
            f"draft {draft.name!r} does not share the vocabulary of target {target.name!r} "
            f"({draft.vocab_size} vs {target.vocab_size} output ids, or different token strings); "
            "pick a draft trained with the same tokenizer")
