"""Our vision and audio towers, their front end and the tokenizer against the transformers classes whose
weights and outputs they must reproduce (fp32), and the start-up they exist for: building and running the
omni model imports neither transformers nor torch._dynamo."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from unimoe.encoders import AudioSpec, AudioTower, VisionSpec, VisionTower
from unimoe.whisper import WhisperConfig, WhisperDecoder, log_mel, mel_filters

REPO = Path(__file__).resolve().parents[2]
VIT = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, image_size=32,
           patch_size=8)
WHISPER = dict(d_model=48, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
               encoder_ffn_dim=96, decoder_ffn_dim=96, num_mel_bins=80, max_source_positions=50,
               max_target_positions=16, vocab_size=8, pad_token_id=0)


def _randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter redrawn, so that no zero-initialised bias or unit norm hides a wiring mistake."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def _load(ours: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Strict load under the released names: any key named differently fails here."""
    ours.load_state_dict({prefix + k: v for k, v in state.items()}, strict=True)
    ours.eval()


def _vision_state(hf_model: torch.nn.Module, drop: tuple[str, ...]) -> dict[str, torch.Tensor]:
    state = hf_model.state_dict()
    return {k.removeprefix("vision_model."): v for k, v in state.items()
            if not k.endswith("position_ids") and not any(d in k for d in drop)}


def test_siglip_tower_matches_transformers_penultimate_layer():
    from transformers import SiglipVisionConfig, SiglipVisionModel

    reference = _randomised(SiglipVisionModel(SiglipVisionConfig(**VIT)))
    ours = VisionTower(VisionSpec.from_config({"kind": "siglip", **VIT, "spatial_pool": 2}))
    last = VIT["num_hidden_layers"] - 1  # the released tower deletes the last layer, post-layernorm and head
    _load(ours, _vision_state(reference, (f"layers.{last}.", "post_layernorm", "head.")),
          "vision_tower.vision_model.")
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        got = ours(pixels)
    assert got.shape == (3, 16, 48)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_clip_tower_matches_transformers_layer_minus_two_patch_tokens():
    from transformers import CLIPVisionConfig, CLIPVisionModel

    reference = _randomised(CLIPVisionModel(CLIPVisionConfig(**VIT)), seed=1)
    ours = VisionTower(VisionSpec.from_config({"kind": "clip", **VIT, "spatial_pool": 4}))
    _load(ours, _vision_state(reference, ()), "vision_tower.vision_model.")  # every layer is kept for loading
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        got = ours(pixels)
    assert got.shape == (2, 16, 48)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_whisper_encoder_matches_transformers():
    from transformers import WhisperConfig as HFWhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    reference = _randomised(WhisperEncoder(HFWhisperConfig(**WHISPER)), seed=2)
    ours = AudioTower(AudioSpec.from_config({**WHISPER, "chunk_samples": 16_000}))
    _load(ours, reference.state_dict(), "audio_tower.")
    features = torch.randn(2, 80, 100)
    with torch.no_grad():
        expected = reference(input_features=features).last_hidden_state
        got = ours(features)
    assert got.shape == (2, 50, 48)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="windows of 100 mel frames, got 99"):
        ours(features[..., :99])


def test_whisper_decoder_over_query_embeddings_matches_transformers():
    """The Q-Former's body: queries with learned positions, causal self-attention, cross-attention."""
    from transformers import WhisperConfig as HFWhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperDecoder as HFWhisperDecoder

    reference = _randomised(HFWhisperDecoder(HFWhisperConfig(**WHISPER)), seed=3)
    ours = WhisperDecoder(WhisperConfig.from_dict(WHISPER))
    _load(ours, reference.state_dict(), "")
    queries, states = torch.randn(2, 12, 48), torch.randn(2, 50, 48)
    with torch.no_grad():
        expected = reference(inputs_embeds=queries, encoder_hidden_states=states, use_cache=False).last_hidden_state
        got = ours(queries, states)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_encoder_position_table_is_whisper_sinusoids():
    from transformers.models.whisper.modeling_whisper import sinusoids as hf_sinusoids

    tower = AudioTower(AudioSpec.from_config({**WHISPER, "chunk_samples": 16_000}))
    torch.testing.assert_close(tower.audio_tower.embed_positions.weight, hf_sinusoids(50, 48), rtol=0, atol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_equal_transformers_slaney_bank(n_mels):
    from transformers.audio_utils import mel_filter_bank

    expected = mel_filter_bank(num_frequency_bins=201, num_mel_filters=n_mels, min_frequency=0.0,
                               max_frequency=8000.0, sampling_rate=16_000, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(mel_filters(n_mels).numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("length,window", [(30_000, 32_000), (40_000, 32_000), (100, 480_000), (480_000, 480_000)])
def test_log_mel_equals_whisper_feature_extractor(length, window):
    """Padded, cut and exact-length windows give the feature extractor's features bit for bit."""
    from transformers import WhisperFeatureExtractor

    samples = (np.random.default_rng(length).standard_normal(length) * 0.1).astype(np.float32)
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=window // 16_000)
    expected = extractor(samples, sampling_rate=16_000, return_tensors="np").input_features[0]
    got = log_mel(torch.from_numpy(samples), mel_filters(80), window).numpy()
    assert got.shape == (80, window // 160)
    np.testing.assert_array_equal(got, expected)


def test_tokenizer_equals_transformers_fast_tokenizer():
    from transformers import PreTrainedTokenizerFast

    from unimoe.tokenizer import SPECIAL_TOKENS, load_tokenizer

    ours = load_tokenizer()
    reference = PreTrainedTokenizerFast(tokenizer_object=ours.backend, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>")
    texts = ["Hello", " Hello world!", "Ünïcödé 日本語 🙂", "<|im_start|>user\nhi<|im_end|>\n", "a  b\t\nc", "",
             "[IMG3] draw [TASK1]", "<|audio_start|><|audio_pad|><|audio_end|>", "don't  stop at 3.14159"]
    for text in texts:
        for special in (False, True):
            ids = ours.encode(text, add_special_tokens=special)
            assert ids == reference.encode(text, add_special_tokens=special), text
            for skip in (False, True):
                assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    assert [ours.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == reference.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert (ours.eos_token_id, ours.pad_token_id, len(ours)) == (reference.eos_token_id, reference.pad_token_id,
                                                                  len(reference))
    assert ours.decode(torch.tensor([9707, ours.eos_token_id]), skip_special_tokens=True) == "Hello"


def test_building_and_running_the_omni_model_imports_neither_transformers_nor_dynamo():
    """What the towers are written for: about 2-3 s off every run's and every rank's start-up."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import torch
        from unimoe.checkpoint import from_pretrained
        from unimoe.omni import UniMoEOmni
        from unimoe.processor import Audio, Image, Processor
        from unimoe.tokenizer import load_tokenizer

        model = from_pretrained("unimoe/weights/unimoe_tiny", dtype=torch.float32, model_class=UniMoEOmni)
        processor = Processor.for_config(model.config, load_tokenizer())
        batch = processor.collate([processor.encode([{"role": "user", "content": [
            Image(np.zeros((32, 32, 3), np.uint8)), Audio(np.zeros(16_000, np.float32)), "Which?"]}])])
        model.generate_batch(batch, max_new_tokens=2)
        print(sorted(m for m in sys.modules if m.startswith(("transformers", "torch._dynamo"))))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert out.stdout.strip().splitlines()[-1] == "[]"
