"""Training objectives: cross-entropy plus the decaying load-balancing loss, DPO, and GSPO.

- SFT (reference §1.6): ``CE + lambda(step) * mean_layers(L_aux)``, lambda decaying linearly from
  ``l_aux_weight`` to ``min_l_aux_weight`` over ``l_aux_weight_decay_steps`` (constant when 0 steps).
- DPO (Rafailov et al. 2023): ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` on sequence
  log-probabilities of the chosen and rejected answers.
- GSPO (Zheng et al. 2025, as the Uni-MoE-2 paper describes its RL stage): a sequence-level importance
  ratio ``s = exp(mean_t (log pi - log pi_old))`` (length-normalised), clipped like PPO, with advantages
  normalised within each group of answers to the same prompt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def aux_weight(step: int, start: float, end: float, decay_steps: int) -> float:
    """The load-balancing coefficient at ``step`` (linear decay, then constant)."""
    if decay_steps <= 0:
        return start
    frac = min(step, decay_steps) / decay_steps
    return start + (end - start) * frac


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of next-token log-probabilities of the labelled tokens per row, and their count: ``([B], [B])``."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != ignore_index
    logp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (logp * mask).sum(-1), mask.sum(-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rewards ``[G, n]`` (n answers per prompt) -> advantages normalised within each group."""
    mean, std = rewards.mean(-1, keepdim=True), rewards.std(-1, keepdim=True)
    return (rewards - mean) / (std + eps)


def gspo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, lengths: torch.Tensor, advantages: torch.Tensor,
              clip: float = 0.2) -> torch.Tensor:
    """Sequence-level clipped objective. ``logp_*``: summed log-probs per answer ``[N]``; ``lengths`` ``[N]``."""
    ratio = torch.exp((logp_new - logp_old.detach()) / lengths.clamp(min=1))
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantages
    return -torch.minimum(unclipped, clipped).mean()
