"""A loaded Llama-architecture model written as a GGUF file in f32, for llama.cpp (issue 22's peers).

What llama.cpp's own `convert_hf_to_gguf.py` does for a `LlamaForCausalLM`, for the shape of model this project
trains: tensors under llama.cpp's names (token_embd, blk.N.attn_q ..., output_norm; output only when the head is not
tied to the embeddings), the hyperparameters its `llama` architecture reads, and the byte-level BPE vocabulary with
its merges under the `gpt-2` pre-tokenizer (our tokenizer splits text with GPT-2's regex; convert_hf_to_gguf would
refuse it, since it recognises pre-tokenizers by the hash of a test string's tokens and ours is not on its list).

The q and k projections are permuted: transformers rotates a head's two halves (dimension i pairs with i + d/2),
llama.cpp's `llama` rope rotates neighbours (2i with 2i+1), so each head's rows are interleaved from its halves.

Files are cached under $XDG_CACHE_HOME/decoding-playground/gguf (else ~/.cache/...), named after the model and a hash
of its weights, vocabulary and hyperparameters: changed weights get a new file, unchanged ones are converted once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from playground.errors import PlaygroundError
from playground.models.loading import LoadedModel

FORMAT = 2  # bump when what is written changes: every cached file is then converted again
PEERS_INSTALL = ".venv/bin/pip install -r requirements-peers.txt"

# transformers' name after "model.layers.N." -> llama.cpp's after "blk.N."
LAYER_NAMES = {
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight", "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}
TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
GGUF_KEYS = (  # what llama.cpp's `llama` architecture reads: GGUFWriter.add_KEY(hyperparameters()[FIELD])
    ("block_count", "layers"), ("context_length", "context"), ("embedding_length", "embedding"),
    ("feed_forward_length", "ffn"), ("head_count", "heads"), ("head_count_kv", "kv_heads"),
    ("key_length", "head_dim"), ("value_length", "head_dim"), ("rope_dimension_count", "head_dim"),
    ("rope_freq_base", "rope_theta"), ("layer_norm_rms_eps", "rms_eps"), ("vocab_size", "vocab"),
)


def import_gguf():
    try:
        import gguf
    except ImportError:
        raise PlaygroundError(f"writing a GGUF file needs the gguf package, not installed here: {PEERS_INSTALL}") \
            from None
    return gguf


def check_llama(loaded: LoadedModel) -> None:
    """Only what this converter writes correctly: a plain Llama (no biases, SiLU, default rope)."""
    cfg = loaded.model.config
    rope = getattr(cfg, "rope_parameters", None) or {}
    wrong = ("it is not a Llama-architecture model" if cfg.model_type != "llama" else
             "it has attention or MLP biases" if cfg.attention_bias or cfg.mlp_bias else
             f"its activation is {cfg.hidden_act}" if cfg.hidden_act != "silu" else
             f"its rope is {rope.get('rope_type')}" if rope.get("rope_type", "default") != "default" else None)
    if wrong:
        raise PlaygroundError(f"the llama.cpp peers convert plain Llama models only; {loaded.name!r}: {wrong}")


def hyperparameters(cfg) -> dict:
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    rope = getattr(cfg, "rope_parameters", None) or {}
    return {"layers": cfg.num_hidden_layers, "context": cfg.max_position_embeddings, "embedding": cfg.hidden_size,
            "ffn": cfg.intermediate_size, "heads": heads, "kv_heads": cfg.num_key_value_heads or heads,
            "head_dim": head_dim, "rope_theta": float(rope.get("rope_theta", 10000.0)),
            "rms_eps": float(cfg.rms_norm_eps), "vocab": cfg.vocab_size,
            "tied": bool(cfg.tie_word_embeddings)}


def rope_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """q or k projection [heads * d, in]: within each head, rows (i, i + d/2) become neighbours (2i, 2i + 1)."""
    rows, cols = weight.shape
    half = rows // heads // 2
    return weight.reshape(heads, 2, half, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def gguf_tensors(loaded: LoadedModel, hp: dict) -> dict[str, np.ndarray]:
    """llama.cpp name -> f32 array, q and k permuted for its rope, the tied head left out."""
    out = {}
    for name, tensor in loaded.model.state_dict().items():
        if name == "lm_head.weight" and hp["tied"]:
            continue  # llama.cpp reuses token_embd when there is no output tensor
        layer = LAYER.fullmatch(name)
        if layer:
            gguf_name = LAYER_NAMES.get(layer.group(2))
            gguf_name = gguf_name and f"blk.{layer.group(1)}.{gguf_name}"
        else:
            gguf_name = TOP_NAMES.get(name)
        if gguf_name is None:
            if name.endswith("rotary_emb.inv_freq"):
                continue
            raise PlaygroundError(f"cannot convert {loaded.name!r} to GGUF: no llama.cpp name for tensor {name}")
        array = np.ascontiguousarray(tensor.detach().to("cpu").float().numpy())
        if gguf_name.endswith("attn_q.weight"):
            array = np.ascontiguousarray(rope_rows(array, hp["heads"]))
        elif gguf_name.endswith("attn_k.weight"):
            array = np.ascontiguousarray(rope_rows(array, hp["kv_heads"]))
        out[gguf_name] = array
    return out


def vocabulary(loaded: LoadedModel) -> dict:
    """Tokens in id order (byte-level strings, as tokenizer.json holds them), their types and the BPE merges."""
    spec = json.loads(loaded.tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE" or (spec.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
        raise PlaygroundError(f"cannot convert {loaded.name!r} to GGUF: its tokenizer is not byte-level BPE")
    vocab = dict(spec["model"]["vocab"])
    special = {t["id"]: t["content"] for t in spec.get("added_tokens", []) if t.get("special")}
    by_id = {i: s for s, i in vocab.items()} | special
    size = loaded.model.config.vocab_size
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    types = [3 if i in special else 1 if i in by_id else 5 for i in range(size)]  # CONTROL, NORMAL, UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    tok = loaded.tokenizer
    ids = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
    return {"tokens": tokens, "types": types, "merges": merges, "ids": ids}


def fingerprint(hp: dict, vocab: dict, tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(json.dumps({"format": FORMAT, "hp": hp, "vocab": vocab}, sort_keys=True).encode())
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(str(tensors[name].shape).encode())
        digest.update(tensors[name].tobytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "decoding-playground" / "gguf"


def write(path: Path, name: str, hp: dict, vocab: dict, tensors: dict[str, np.ndarray]) -> None:
    """The GGUF file, written to a temporary name and moved into place (a reader never sees half a file)."""
    gguf = import_gguf()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, field in GGUF_KEYS:
        getattr(writer, f"add_{key}")(hp[field])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # GPT-2's split regex, which our ByteLevel pre-tokenizer uses
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_token_merges(vocab["merges"])
    for role, token_id in vocab["ids"].items():
        if token_id is not None:
            getattr(writer, f"add_{role}_token_id")(token_id)
    writer.add_add_bos_token(False)  # our tokenizer adds nothing to a prompt
    for tensor_name, array in tensors.items():
        writer.add_tensor(tensor_name, array)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def gguf_path(loaded: LoadedModel) -> Path:
    """The model's GGUF file in the cache, written first if this version of its weights has none."""
    check_llama(loaded)
    hp = hyperparameters(loaded.model.config)
    vocab = vocabulary(loaded)
    tensors = gguf_tensors(loaded, hp)
    stem = re.sub(r"[^\w.-]", "_", Path(loaded.name).name) or "model"
    path = cache_dir() / f"{stem}-{fingerprint(hp, vocab, tensors)}.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, loaded.name, hp, vocab, tensors)
    return path
