"""WavTokenizer (single codebook of 4,096 codes, 40 codes/s, 24 kHz), the codec MoE-TTS writes for.

Decoding as released (``WavTokenizer.decode`` after ``codes_to_features``): codes look up the VQ codebook
(``[4096, 512]``), the Vocos backbone (a conv embedding, a ``pos_net`` of ResNet/attention blocks, AdaLayerNorm
ConvNeXt blocks conditioned on bandwidth id 0) maps them to frames, and the ISTFT head predicts log-magnitude
and phase per frame and overlap-adds them with ``same`` padding: ``hop`` samples per code.

Module names equal the released Lightning checkpoint's keys (``backbone.*``, ``head.*``,
``feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed``), so that checkpoint loads as it is
(:func:`load_wavtokenizer`). The encoder (waveform -> codes, to make training targets) is either the released
SEANet (:mod:`unimoe.tts.seanet`, ``encoder="seanet"``, the default, whose ``feature_extractor.encodec.encoder.*``
keys load from the released checkpoint) or, for the tiny codec, a small strided convolution stack
(``encoder="conv"``); both end in the nearest-codebook lookup of the released single-codebook quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.tts.config_io import StrictConfig
from unimoe.tts.seanet import SEANetEncoder


@dataclass
class WavTokenizerConfig(StrictConfig):
    """Defaults are ``wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.yaml``."""

    sample_rate: int = 24_000
    codebook_size: int = 4096
    codebook_dim: int = 512
    downsamples: tuple[int, ...] = (6, 5, 5, 4)  # product = hop
    dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    adanorm_num_embeddings: int = 4
    n_fft: int = 2400
    hop_length: int = 600
    encoder: str = "seanet"  # "seanet" (released) or "conv" (ours, small)
    encoder_channels: int = 32  # the encoder's first width (doubles per stride)
    lstm_layers: int = 2  # the SEANet encoder's LSTM
    groups: int = 32  # GroupNorm groups of the pos_net

    @property
    def codes_per_second(self) -> float:
        return self.sample_rate / self.hop_length


# ------------------------------------------------------------------------------------------------------
# backbone


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice, residual (the VQGAN block of the ``pos_net``; no time embedding)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels, eps=1e-6)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, channels, eps=1e-6)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class AttnBlock(nn.Module):
    """Single-head self-attention over frames with 1x1-conv projections, residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = (proj(h).transpose(1, 2) for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(y.transpose(1, 2))


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are looked up by a condition id (the bandwidth id)."""

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, x.shape[-1:], eps=self.eps)
        return y * self.scale(cond)[:, None] + self.shift(cond)[:, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float, num_conditions: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(num_conditions, dim)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2), cond)
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    def __init__(self, config: WavTokenizerConfig):
        super().__init__()
        d, g = config.dim, config.groups
        self.embed = nn.Conv1d(config.codebook_dim, d, 7, padding=3)
        self.pos_net = nn.Sequential(ResnetBlock(d, g), ResnetBlock(d, g), AttnBlock(d, g), ResnetBlock(d, g),
                                     ResnetBlock(d, g), nn.GroupNorm(g, d, eps=1e-6))
        self.norm = AdaLayerNorm(config.adanorm_num_embeddings, d)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(d, config.intermediate_dim, 1 / config.num_layers, config.adanorm_num_embeddings)
            for _ in range(config.num_layers))
        self.final_layer_norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, features: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``features [B, C, T]`` -> frames ``[B, T, dim]``."""
        x = self.pos_net(self.embed(features))
        x = self.norm(x.transpose(1, 2), cond).transpose(1, 2)
        for block in self.convnext:
            x = block(x, cond)
        return self.final_layer_norm(x.transpose(1, 2))


# ------------------------------------------------------------------------------------------------------
# inverse-STFT head


class ISTFT(nn.Module):
    """Inverse STFT with ``same`` padding: ``T`` frames give exactly ``T · hop`` samples (no centre padding,
    the ``(win - hop) / 2`` overlap trimmed at both ends, normalised by the summed squared window)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``spec [B, n_fft/2 + 1, T]`` complex -> ``[B, T · hop]``."""
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop) // 2
        chunks = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        size = (frames - 1) * self.hop + self.n_fft
        y = F.fold(chunks, (1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))[:, 0, 0]
        envelope = F.fold(self.window.square()[None, :, None].expand(1, -1, frames), (1, size),
                          kernel_size=(1, self.n_fft), stride=(1, self.hop))[0, 0, 0]
        return y[:, pad:size - pad] / envelope[pad:size - pad].clamp_min(1e-11)


class ISTFTHead(nn.Module):
    def __init__(self, config: WavTokenizerConfig):
        super().__init__()
        self.out = nn.Linear(config.dim, config.n_fft + 2)
        self.istft = ISTFT(config.n_fft, config.hop_length)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.out(frames).transpose(1, 2).chunk(2, dim=1)
        spec = log_mag.exp().clamp(max=1e2) * torch.polar(torch.ones_like(phase), phase)
        return self.istft(spec)


# ------------------------------------------------------------------------------------------------------
# codebook and encoder


class Codebook(nn.Module):
    """The VQ codebook, nested as EnCodec's ``quantizer.vq.layers.0._codebook`` so released keys load."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("embed", torch.randn(size, dim))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, T]`` -> features ``[B, dim, T]``."""
        return F.embedding(codes, self.embed).transpose(1, 2)

    def nearest(self, features: torch.Tensor) -> torch.Tensor:
        """``features [B, dim, T]`` -> the nearest code per frame ``[B, T]`` (squared Euclidean distance)."""
        x = features.transpose(1, 2)
        dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.embed.T + self.embed.pow(2).sum(-1)
        return dist.argmin(-1)


class ConvEncoder(nn.Module):
    """Waveform ``[B, 1, S]`` -> features ``[B, codebook_dim, S // hop]``: a strided conv per downsampling
    factor (the tiny codec's encoder, cheaper to train on a CPU than SEANet)."""

    def __init__(self, config: WavTokenizerConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for i, stride in enumerate(config.downsamples):
            out = config.encoder_channels * 2 ** i
            layers += [nn.Conv1d(channels, out, 2 * stride, stride=stride, padding=stride // 2 + stride % 2), nn.ELU()]
            channels = out
        layers.append(nn.Conv1d(channels, config.codebook_dim, 3, padding=1))
        self.model = nn.Sequential(*layers)
        self.hop = config.hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav.shape[-1] // self.hop
        return self.model(wav[..., :frames * self.hop])[..., :frames]


def build_encoder(config: WavTokenizerConfig) -> nn.Module:
    if config.encoder == "seanet":
        return SEANetEncoder(config.codebook_dim, config.encoder_channels, config.downsamples, config.lstm_layers)
    if config.encoder == "conv":
        return ConvEncoder(config)
    raise ValueError(f"WavTokenizer encoder must be 'seanet' or 'conv', got {config.encoder!r}")


class WavTokenizer(nn.Module):
    def __init__(self, config: WavTokenizerConfig):
        super().__init__()
        self.config = config
        self.feature_extractor = nn.Module()
        self.feature_extractor.encodec = nn.Module()
        self.feature_extractor.encodec.encoder = build_encoder(config)
        layer = nn.Module()
        layer._codebook = Codebook(config.codebook_size, config.codebook_dim)
        self.feature_extractor.encodec.quantizer = nn.Module()
        self.feature_extractor.encodec.quantizer.vq = nn.Module()
        self.feature_extractor.encodec.quantizer.vq.layers = nn.ModuleList([layer])
        self.backbone = VocosBackbone(config)
        self.head = ISTFTHead(config)

    @property
    def codebook(self) -> Codebook:
        return self.feature_extractor.encodec.quantizer.vq.layers[0]._codebook

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def decode_features(self, features: torch.Tensor) -> torch.Tensor:
        cond = torch.zeros(features.shape[0], dtype=torch.long, device=features.device)  # bandwidth id 0
        return self.head(self.backbone(features, cond))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, T]`` (or ``[T]``) in ``[0, 4096)`` -> waveform ``[B, T · hop]`` at ``sample_rate``."""
        if codes.dim() == 1:
            codes = codes[None]
        return self.decode_features(self.codebook.lookup(codes))

    def encode_features(self, wav: torch.Tensor) -> torch.Tensor:
        """Waveform ``[B, S]`` -> the encoder's frames ``[B, codebook_dim, T]``."""
        return self.feature_extractor.encodec.encoder(wav[:, None])

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Waveform ``[B, S]`` at ``sample_rate`` -> codes ``[B, T]``, one per ``hop`` samples (SEANet pads a
        partial last window to a frame, ``T = ceil(S / hop)``; the conv encoder drops it, ``T = S // hop``)."""
        return self.codebook.nearest(self.encode_features(wav))


PRESETS: dict[str, dict[str, Any]] = {
    "released": {},
    # the tiny codec shipped with unimoe_tiny: the released hop, rate and codebook, small widths
    "tiny": dict(codebook_size=4096, codebook_dim=32, dim=64, intermediate_dim=128, num_layers=2, groups=8,
                 encoder="conv", encoder_channels=8),
}


def preset(name: str, **changes: Any) -> WavTokenizerConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown WavTokenizer preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return WavTokenizerConfig(**{**PRESETS[name], **changes})
