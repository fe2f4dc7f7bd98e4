"""Whisper's encoder (the audio tower) and decoder stack (the body of the audio Q-Former).

Parameter names and configuration keys are those of Hugging Face's ``WhisperEncoder`` / ``WhisperDecoder``, so
released and hub weights load unchanged; tests/unimoe/test_towers.py holds the outputs equal to transformers' in
fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.blocks import Attention, activation, config_fields


@dataclass(frozen=True)
class WhisperConfig:
    """Whisper geometry; the defaults are Hugging Face ``WhisperConfig``'s (whisper-tiny's shape)."""

    d_model: int = 384
    num_mel_bins: int = 80
    encoder_layers: int = 4
    encoder_attention_heads: int = 6
    encoder_ffn_dim: int = 1536
    decoder_layers: int = 4
    decoder_attention_heads: int = 6
    decoder_ffn_dim: int = 1536
    activation_function: str = "gelu"
    max_source_positions: int = 1500  # encoder states per window: 30 s of 10 ms mel frames, halved by conv2
    max_target_positions: int = 448
    vocab_size: int = 51865
    pad_token_id: int | None = 50256

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "WhisperConfig":
        """Read a Hugging Face Whisper config dict (see :func:`config_fields`)."""
        return WhisperConfig(**config_fields(WhisperConfig, values))

    @property
    def mel_frames(self) -> int:
        """Mel frames per encoder window (conv2 has stride 2)."""
        return 2 * self.max_source_positions


def sinusoids(length: int, channels: int, max_timescale: float = 10_000.0) -> torch.Tensor:
    """Whisper's fixed encoder position table ``[length, channels]``: sines then cosines."""
    if channels % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {channels}")
    increment = math.log(max_timescale) / (channels // 2 - 1)
    scaled = torch.arange(length)[:, None] * torch.exp(-increment * torch.arange(channels // 2))[None]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


class EncoderLayer(nn.Module):
    """Pre-norm block: self-attention, then the feed-forward (Whisper keeps ``fc1``/``fc2`` and
    ``final_layer_norm`` on the layer itself)."""

    def __init__(self, d: int, heads: int, ffn: int, act: str):
        super().__init__()
        self.self_attn = Attention(d, heads, key_bias=False)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.act = activation(act)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(x + self.self_attn(self.self_attn_layer_norm(x)))


class DecoderLayer(EncoderLayer):
    """Causal self-attention, cross-attention to the encoder states, then the feed-forward."""

    def __init__(self, d: int, heads: int, ffn: int, act: str):
        super().__init__(d, heads, ffn, act)
        self.encoder_attn = Attention(d, heads, key_bias=False)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), causal=True)
        x = x + self.encoder_attn(self.encoder_attn_layer_norm(x), context=encoder_states)
        return self.feed_forward(x)


class WhisperEncoder(nn.Module):
    """Log-mel windows ``[N, mels, 2 * max_source_positions]`` -> states ``[N, max_source_positions, D]``."""

    def __init__(self, config: WhisperConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, d)
        self.embed_positions.requires_grad_(False)  # fixed sinusoids, stored in the checkpoints
        if not self.embed_positions.weight.is_meta:  # built on meta: the checkpoint brings them
            with torch.no_grad():
                self.embed_positions.weight.copy_(sinusoids(config.max_source_positions, d))
        self.layers = nn.ModuleList(EncoderLayer(d, config.encoder_attention_heads, config.encoder_ffn_dim,
                                                 config.activation_function) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.config.mel_frames:
            raise ValueError(f"Whisper takes windows of {self.config.mel_frames} mel frames, got {features.shape[-1]}")
        x = F.gelu(self.conv1(features))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.embed_positions.weight
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


class WhisperDecoder(nn.Module):
    """The decoder stack over given input embeddings (the Q-Former's queries): learned positions, causal
    self-attention, cross-attention to the encoder states. ``embed_tokens`` is kept so that the weights load
    strictly; the Q-Former never looks tokens up."""

    def __init__(self, config: WhisperConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.embed_tokens = nn.Embedding(config.vocab_size, d, config.pad_token_id)
        self.embed_positions = nn.Embedding(config.max_target_positions, d)
        self.layers = nn.ModuleList(DecoderLayer(d, config.decoder_attention_heads, config.decoder_ffn_dim,
                                                 config.activation_function) for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, inputs_embeds: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        length = inputs_embeds.shape[1]
        if length > self.config.max_target_positions:
            raise ValueError(f"{length} inputs exceed the decoder's {self.config.max_target_positions} positions")
        x = inputs_embeds + self.embed_positions.weight[:length]
        for layer in self.layers:
            x = layer(x, encoder_states)
        return self.layer_norm(x)


# ---------------------------------------------------------------------------------------------- front end
SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms windows
HOP = 160  # 10 ms frames


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    log_step = math.log(6.4) / 27.0
    return torch.where(hz < 1000.0, hz * 3.0 / 200.0, 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) / log_step)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    log_step = math.log(6.4) / 27.0
    return torch.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * torch.exp(log_step * (mel - 15.0)))


def mel_filters(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> torch.Tensor:
    """Slaney-normalised triangular filters ``[n_fft / 2 + 1, n_mels]`` over 0-8 kHz (librosa's ``norm="slaney"``,
    Whisper's filter bank), computed in float64."""
    fft_hz = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(0.0, float(_hz_to_mel(torch.tensor(8000.0, dtype=torch.float64))), n_mels + 2,
                                      dtype=torch.float64))
    widths = edges.diff()
    slopes = edges[None, :] - fft_hz[:, None]
    rising, falling = -slopes[:, :-2] / widths[:-1], slopes[:, 2:] / widths[1:]
    triangles = torch.minimum(rising, falling).clamp(min=0.0)
    return triangles * (2.0 / (edges[2:] - edges[:-2]))[None]


def log_mel(samples: torch.Tensor, filters: torch.Tensor, window_samples: int) -> torch.Tensor:
    """Whisper's input features of one window: 16 kHz ``samples`` (zero-padded or cut to ``window_samples``) ->
    ``[n_mels, window_samples / 160]`` log10 mel energies, floored 8 decades below the peak and scaled to about
    [-1, 1]."""
    audio = F.pad(samples.float()[:window_samples], (0, max(0, window_samples - samples.shape[-1])))
    spectrum = torch.stft(audio, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = (spectrum[..., :-1].abs() ** 2).contiguous()  # the last frame is dropped, as Whisper does
    mel = (filters.T.float() @ power).clamp(min=1e-10).log10()
    mel = torch.maximum(mel, mel.max() - 8.0)
    return (mel + 4.0) / 4.0
