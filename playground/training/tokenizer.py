"""The byte-level BPE tokenizer every shipped model shares, trained on the standard library's training split."""

from __future__ import annotations

from playground.data import stdlib as data
from playground.models.loading import ASSETS
from playground.training.configs import ModelConfig, TokenizerConfig

TOKENIZER_DIR = ASSETS / "tokenizer"
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|mask|>"]


def train_tokenizer(cfg: TokenizerConfig) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True,
    )
    texts = (t for t in map(data.read_source, data.stdlib_files("train")) if t)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|pad|>",
        mask_token="<|mask|>", unk_token=None, clean_up_tokenization_spaces=False,
    )
    fast.model_max_length = ModelConfig.max_position_embeddings
    fast.save_pretrained(TOKENIZER_DIR)
    print(f"tokenizer with {len(fast)} tokens saved to {TOKENIZER_DIR}")


def load_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)
