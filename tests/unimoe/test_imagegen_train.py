"""Training the tiny image head: a few steps over the frozen unimoe_tiny LM, saved, resumed, loadable."""

from __future__ import annotations

import torch

from unimoe.imagegen.generator import ImageGenerator
from unimoe.imagegen.trigger import SpanStates
from unimoe.train.imagegen import train


def test_training_runs_saves_and_resumes(tmp_path):
    logs: list[str] = []
    out = train(tmp_path, steps=2, batch_size=2, n_per_kind=2, save_every=1, log=logs.append)
    first = ImageGenerator.load(out)
    assert (tmp_path / "training" / "state.pt").is_file() and any("after 2 steps" in line for line in logs)
    logs.clear()
    train(tmp_path, steps=3, batch_size=2, n_per_kind=2, save_every=1, log=logs.append)
    assert "resumed at step 2" in logs and any("after 3 steps" in line for line in logs)
    second = ImageGenerator.load(out)
    changed = [k for k, v in second.state_dict().items() if not torch.equal(v, first.state_dict()[k])]
    assert changed and all(not k.startswith("vae.") for k in changed)  # the autoencoder stays as fitted
    spans = SpanStates("", *(torch.randn(1, n, 64) for n in (3, 3, 32, 32)), None, True)
    assert second.generate_image(spans, seed=0, steps=2).shape == (64, 64, 3)
