"""The released WavTokenizer encoder: EnCodec's SEANet (waveform -> 512-wide frames, one per ``hop`` samples).

As configured by ``EncodecFeatures`` in the WavTokenizer release (non-causal, weight-normed convolutions with
reflect padding, one residual block per stage with a 1x1-conv shortcut and a halved inner width, strides
``reversed(downsamples)`` = 4, 5, 5, 6 doubling the width from 32 to 512, a 2-layer LSTM with a skip, ELU, a
final 7-tap convolution to the codebook width). Module names and weight-norm parameters (``weight_g``,
``weight_v``) equal the released checkpoint's ``feature_extractor.encodec.encoder.*`` keys, so it loads as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormConv1d(nn.Module):
    """``Conv1d`` with weight normalisation over every dimension but the output channel (``weight = g · v /
    ‖v‖``), stored as ``weight_g``/``weight_v`` as ``torch.nn.utils.weight_norm`` names them."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)
        self.stride, self.dilation, self.kernel_size = stride, dilation, kernel_size
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().flatten(1).norm(dim=1)[:, None, None].clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def weight(self) -> torch.Tensor:
        return self.weight_g * self.weight_v / self.weight_v.flatten(1).norm(dim=1)[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, stride=self.stride, dilation=self.dilation)


class NormConv1d(nn.Module):
    def __init__(self, *args: int, **kwargs: int):
        super().__init__()
        self.conv = WeightNormConv1d(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SConv1d(nn.Module):
    """A convolution padded as EnCodec's non-causal ``SConv1d``: ``k_eff - stride`` samples split between the
    ends (the extra one on the left) by reflection, plus what the last window needs to be full on the right."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        kernel = (conv.kernel_size - 1) * conv.dilation + 1
        total = kernel - conv.stride
        length = x.shape[-1]
        frames = math.ceil((length - kernel + total) / conv.stride + 1)
        extra = (frames - 1) * conv.stride + kernel - total - length
        right = total // 2
        return self.conv(_reflect_pad(x, total - right, right + extra))


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works on inputs shorter than the padding (zero-extended first, as EnCodec)."""
    extra = max(0, max(left, right) - x.shape[-1] + 1)
    padded = F.pad(F.pad(x, (0, extra)), (left, right), mode="reflect")
    return padded[..., :padded.shape[-1] - extra]


class SEANetResnetBlock(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(nn.ELU(), SConv1d(dim, hidden, kernel_size, dilation=dilation),
                                   nn.ELU(), SConv1d(hidden, dim, 1))
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """An LSTM over frames in convolution layout ``[B, C, T]``, with a skip connection."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x.permute(2, 0, 1))
        return y.permute(1, 2, 0) + x


class SEANetEncoder(nn.Module):
    """Waveform ``[B, 1, S]`` -> features ``[B, dimension, ceil(S / hop)]``."""

    def __init__(self, dimension: int, n_filters: int, downsamples: tuple[int, ...], lstm_layers: int,
                 kernel_size: int = 7):
        super().__init__()
        layers: list[nn.Module] = [SConv1d(1, n_filters, kernel_size)]
        width = n_filters
        for stride in reversed(downsamples):  # the release lists the decoder's order
            layers += [SEANetResnetBlock(width), nn.ELU(), SConv1d(width, 2 * width, 2 * stride, stride=stride)]
            width *= 2
        if lstm_layers:
            layers.append(SLSTM(width, lstm_layers))
        layers += [nn.ELU(), SConv1d(width, dimension, kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
