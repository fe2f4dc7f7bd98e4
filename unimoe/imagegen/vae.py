"""The latent space the DiT denoises in. The released generator uses the SD-XL VAE (8x down, 4 channels); the
tiny head uses a linear patch autoencoder with the same interface: ``f x f`` pixel patches to ``C`` channels
by a 1x1 projection, fitted in closed form by PCA (:meth:`PatchAutoencoder.fit`), so it needs no training
steps and reconstructs the omniworld scenes at ~31 dB with 8 channels, ~34 dB with 12. ``encode`` returns latents scaled to unit variance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchAutoencoder(nn.Module):
    def __init__(self, latent_channels: int = 8, factor: int = 4):
        super().__init__()
        self.latent_channels, self.factor = latent_channels, factor
        patch = 3 * factor * factor
        self.register_buffer("mean", torch.zeros(patch))
        self.register_buffer("components", torch.eye(patch)[:, :latent_channels].clone())  # (patch, C), orthonormal
        self.register_buffer("scaling_factor", torch.ones(()))

    def _patches(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(pixels, self.factor).permute(0, 2, 3, 1)  # (B, H/f, W/f, 3 f^2)

    @torch.no_grad()
    def fit(self, pixels: torch.Tensor) -> "PatchAutoencoder":
        """Principal components of the images' patches (``(N, 3, H, W)`` in [-1, 1]), then the latent scale."""
        patches = self._patches(pixels).reshape(-1, self.mean.numel())
        self.mean.copy_(patches.mean(0))
        _, _, v = torch.linalg.svd(patches - self.mean, full_matrices=False)
        self.components.copy_(v[: self.latent_channels].T)
        self.scaling_factor.fill_(1.0)
        self.scaling_factor.fill_(1.0 / float(self.encode(pixels).std()))
        return self

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> scaled latents ``(B, C, H/f, W/f)``."""
        z = (self._patches(pixels) - self.mean) @ self.components
        return z.permute(0, 3, 1, 2) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        patches = (latents / self.scaling_factor).permute(0, 2, 3, 1) @ self.components.T + self.mean
        return F.pixel_shuffle(patches.permute(0, 3, 1, 2), self.factor)
