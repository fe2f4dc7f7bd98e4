"""Tokenizer ids, chat formatting, placeholder expansion, crops, and the omni model end to end (tiny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unimoe.config import UniMoEConfig
from unimoe.processor import AUDIO_PAD, IMAGE_PAD, VIDEO_PAD, Audio, Image, Processor, Video, select_best_resolution
from unimoe.tokenizer import SPECIAL_IDS, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def config():
    return UniMoEConfig.preset("tiny_omni")


@pytest.fixture(scope="module")
def processor(config, tokenizer):
    return Processor.for_config(config, tokenizer)


def test_real_qwen_ids_and_unimoe_special_tokens(tokenizer):
    assert tokenizer.encode("Hello", add_special_tokens=False) == [9707]
    expected = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|vision_start|>": 151652,
                "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|video_pad|>": 151656, "<|audio_start|>": 151665,
                "<|audio_end|>": 151666, "<|audio_pad|>": 151667, "[IMG0]": 151672, "[TASK0]": 151704}
    for token, token_id in expected.items():
        assert SPECIAL_IDS[token] == token_id
        assert tokenizer.convert_tokens_to_ids(token) == token_id
        assert tokenizer.encode(token, add_special_tokens=False) == [token_id]


def test_chat_template_text_only(processor, tokenizer):
    enc = processor.encode([{"role": "user", "content": ["What is 2+2?"]}])
    text = tokenizer.decode(enc["ids"])
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert set(enc["modality"]) == {0}


def test_best_resolution_follows_llava_anyres():
    pins = [(384, 384), (384, 768), (768, 384), (768, 768)]
    assert select_best_resolution((300, 700), pins) == (384, 768)  # wide image: 1 x 2 crops
    assert select_best_resolution((700, 300), pins) == (768, 384)
    assert select_best_resolution((1000, 1000), pins) == (768, 768)
    assert select_best_resolution((100, 100), pins) == (384, 384)


def test_placeholder_expansion_counts(processor):
    wide = np.zeros((20, 50, 3), dtype=np.uint8)  # best grid 32 x 64: 1 x 2 crops of s*s = 4 tokens
    frames = np.zeros((3, 40, 40, 3), dtype=np.uint8)
    spec = processor.audio  # tiny_omni: 2 s chunks of 20 queries
    audio = np.zeros(spec.chunk_samples * 3 // 2, dtype=np.float32)  # 1.5 chunks: two chunks, the last shorter
    batch = processor([[{"role": "user", "content": [Image(wide), Video(frames, fps=1.0), Audio(audio), "Describe."]}]])
    ids = batch.input_ids[0]
    assert int((ids == IMAGE_PAD).sum()) == 2 * 4
    assert int((ids == VIDEO_PAD).sum()) == 3 * 4
    assert int((ids == AUDIO_PAD).sum()) == 2 * 20
    assert batch.image_grid_thw.tolist() == [[1, 1, 2]] and batch.video_grid_thw.tolist() == [[3, 1, 1]]
    assert batch.pixel_values.shape == (2, 3, 32, 32) and batch.audio_features.shape == (2, 80, spec.mel_frames)
    counts = torch.bincount(batch.modality_ids[0], minlength=4).tolist()
    assert counts[1:] == [8, 12, 40]
    assert batch.position_ids.shape == (3, 1, ids.shape[0])

    moved = batch.to("meta")  # the model moves each batch to its own device (a GPU)
    for name, value in vars(batch).items():
        if isinstance(value, torch.Tensor):
            assert getattr(moved, name).device.type == "meta" and getattr(moved, name).shape == value.shape, name
        else:
            assert getattr(moved, name) == value, name
    assert moved.pixel_values is not None and moved.audio_features is not None and moved.video_pixels is not None


def test_omni_model_forward_and_generate_with_routing(config, processor):
    from unimoe.omni import UniMoEOmni
    from unimoe.probes import RoutingProbe

    torch.manual_seed(0)
    model = UniMoEOmni(config).eval()
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    convs = [[{"role": "user", "content": [Image(image), "What colour?"]}],
             [{"role": "user", "content": ["Just text, a longer prompt than the other one."]}]]
    batch = processor(convs)
    probe = RoutingProbe.for_model(config)
    out = model.generate_batch(batch, probe=probe, max_new_tokens=3)
    assert [len(t) for t in out.tokens] == [3, 3]
    counts = probe.counts()
    assert counts["image"]["tokens"] == 4 and counts["text"]["tokens"] > 0
    with torch.no_grad():  # batched, left-padded prompts give each row what it gives alone
        alone = model.forward_batch(processor(convs[:1])).logits[0, -1]
        both = model.forward_batch(batch).logits[0, -1]
    torch.testing.assert_close(alone, both, rtol=1e-4, atol=1e-4)


def test_omni_checkpoint_round_trip_gives_identical_logits(config, processor, tmp_path):
    from unimoe.checkpoint import from_pretrained, save_pretrained
    from unimoe.omni import UniMoEOmni

    torch.manual_seed(1)
    model = UniMoEOmni(config).eval()
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path, model_class=UniMoEOmni)
    image = np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    batch = processor([[{"role": "user", "content": [Image(image), Audio(np.zeros(8000, np.float32)), "Hi"]}]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_batch(batch).logits, model.forward_batch(batch).logits,
                                   rtol=0, atol=0)
