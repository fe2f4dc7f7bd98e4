"""Flow matching on the linear path (the ``transport`` sampler of SiT/Lumina, which PixWizard uses).

``x_t = t * data + (1 - t) * noise`` for t in [0, 1] (t = 1 is data); the DiT predicts the velocity
``data - noise``; sampling integrates the ODE from noise to data with Euler steps, optionally with
classifier-free guidance (:func:`guided`).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> predicted velocity


def flow_loss(velocity: Velocity, data: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared error of the predicted velocity at a uniformly drawn time."""
    noise = torch.randn(data.shape, generator=generator, device=data.device, dtype=data.dtype)
    t = torch.rand(data.shape[0], generator=generator, device=data.device, dtype=data.dtype)
    tb = t.view(-1, *([1] * (data.dim() - 1)))
    x_t = tb * data + (1 - tb) * noise
    return F.mse_loss(velocity(x_t, t), data - noise)


@torch.no_grad()
def sample_flow(velocity: Velocity, shape: tuple[int, ...], steps: int = 16, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Euler integration of the velocity field from Gaussian noise (t = 0) to data (t = 1)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = torch.randn(shape, generator=generator, dtype=dtype).to(device)
    for i in range(steps):
        t = torch.full((shape[0],), i / steps, device=device, dtype=dtype)
        x = x + velocity(x, t) / steps
    return x


def guided(conditional: Velocity, unconditional: Velocity, scale: float) -> Velocity:
    """Classifier-free guidance: ``v_u + scale * (v_c - v_u)`` (scale 1 is the conditional model alone; above 1
    pushes samples further towards what the condition adds, which sharpens a weakly learned condition)."""
    if scale == 1.0:
        return conditional

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_u = unconditional(x, t)
        return v_u + scale * (conditional(x, t) - v_u)

    return velocity
