"""A small convolutional autoencoder: the latent space the DiT denoises in (the released generator uses the
SD-XL VAE; this one keeps its interface, ``encode`` to scaled latents and ``decode`` back to [-1, 1] pixels)."""

from __future__ import annotations

import torch
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1),
                         nn.SiLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())


class TinyVAE(nn.Module):
    """Deterministic autoencoder with a ``2 ** len(widths)`` downsampling factor. ``scaling_factor`` brings
    latents to about unit variance (set after training, as SD's VAEs carry one)."""

    def __init__(self, latent_channels: int = 8, widths: tuple[int, ...] = (32, 64)):
        super().__init__()
        chans = (3, *widths)
        self.encoder = nn.Sequential(*[_down(a, b) for a, b in zip(chans, chans[1:])],
                                     nn.Conv2d(widths[-1], latent_channels, 1))
        rev = tuple(reversed(widths))
        self.decoder = nn.Sequential(nn.Conv2d(latent_channels, rev[0], 3, padding=1), nn.SiLU(),
                                     *[_up(a, b) for a, b in zip(rev, (*rev[1:], rev[-1]))],
                                     nn.Conv2d(rev[-1], 3, 3, padding=1))
        self.latent_channels = latent_channels
        self.factor = 2 ** len(widths)
        self.register_buffer("scaling_factor", torch.ones(()))

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> scaled latents ``(B, C, H/f, W/f)``."""
        return self.encoder(pixels) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents / self.scaling_factor)
