"""Released checkpoint keys -> our projector modules.

Uni-MoE-2.0-Omni stores the projectors next to the language model, as ``<name>.0.<TextFcLayer key>``
(``task_hidden_fcs``, ``image_hidden_fcs``, ``visual_hidden_fcs``), possibly under a ``model.`` prefix, and
``nn.Transformer`` keys inside (``tfm.encoder.layers.N.self_attn.in_proj_weight`` ...). Our modules carry the
same names, so loading is a prefix selection; keys without the list index (``<name>.<key>``) load as well.
"""

from __future__ import annotations

from typing import Mapping

import torch

from unimoe.imagegen.projectors import VisualGenProjectors

PROJECTOR_NAMES = ("task_hidden_fcs", "image_hidden_fcs", "visual_hidden_fcs")


def projector_state(released: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The projector tensors of a released state dict, renamed to :class:`VisualGenProjectors` keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in released.items():
        bare = key.removeprefix("model.")
        name, _, rest = bare.partition(".")
        if name not in PROJECTOR_NAMES:
            continue
        index, _, inner = rest.partition(".")
        out[f"{name}.0.{inner}" if index.isdigit() else f"{name}.0.{rest}"] = value
    return out


def load_projectors(projectors: VisualGenProjectors, released: Mapping[str, torch.Tensor]) -> None:
    """Copy the released projector weights in; a missing, unexpected or misshapen key is an error naming it."""
    state = projector_state(released)
    expected = projectors.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise KeyError(f"projector keys: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                       f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(f"projector key {key}: released shape {tuple(value.shape)}, "
                             f"ours {tuple(expected[key].shape)}")
    projectors.load_state_dict(state)
