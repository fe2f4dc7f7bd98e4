"""The training loop shared by every stage: freezing, AdamW with warm-up and cosine decay, gradient
accumulation and clipping, CE plus the decaying aux loss, checkpoints that resume bit-exactly, a progress
bar, loss curves (CSV and PNG), and data parallelism under ``torchrun`` (DDP; gloo on CPU, NCCL on GPU).

Resume is exact because everything random is a function of (seed, step): the batch order is drawn per
epoch from the seed, and the RNG state is saved with every checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from safetensors.torch import load_file, save_file

from unimoe.train.data import EncodedCache, batches, collate
from unimoe.train.losses import aux_weight


@dataclass
class Stage:
    """One stage of the recipe: what trains, for how long, how fast, on what mixture."""

    name: str
    trainable: tuple[str, ...]  # regular expressions over parameter names; all others are frozen
    steps: int = 100
    lr: float = 1e-3
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03  # fraction of steps
    weight_decay: float = 0.0
    clip: float = 1.0
    aux: bool = True  # add the load-balancing loss (MoE stages)
    mixture: dict[str, float] = field(default_factory=dict)  # modality -> sampling weight (annealing)
    checkpoint_every: int = 50
    kind: str = "sft"  # sft, or a preference stage: gspo | dpo (unimoe.train.preference)
    # preference stages: answers sampled per prompt and how, and the objectives' constants
    group_size: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 16
    beta: float = 0.1  # DPO
    ratio_clip: float = 0.2  # GSPO's clip range of the sequence-level importance ratio
    updates_per_rollout: int = 1  # GSPO optimisation steps on one rollout batch

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Stage":
        d = dict(d)
        d["trainable"] = tuple(d.get("trainable", ()))
        return Stage(**d)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself, out of its DistributedDataParallel wrapper if it has one."""
    return model.module if hasattr(model, "module") else model


def freeze(model: torch.nn.Module, patterns: Sequence[str]) -> list[str]:
    """Train exactly the parameters whose names match a pattern; return their names."""
    regexes = [re.compile(p) for p in patterns]
    trained = []
    for name, param in model.named_parameters():
        param.requires_grad_(any(r.search(name) for r in regexes))
        if param.requires_grad:
            trained.append(name)
    if not trained:
        raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
    return trained


def lr_lambda(stage: Stage):
    warm = max(1, int(stage.warmup * stage.steps))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, stage.steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def mix(examples: Sequence[dict[str, Any]], mixture: dict[str, float], seed: int) -> list[dict[str, Any]]:
    """Re-weight the data by modality (annealing): each modality's examples repeated or thinned to its share."""
    if not mixture:
        return list(examples)
    by: dict[str, list] = {}
    for e in examples:
        by.setdefault(e["modality"], []).append(e)
    total = len(examples)
    g = torch.Generator().manual_seed(seed)
    out = []
    norm = sum(mixture.get(m, 0.0) for m in by)
    for modality, items in sorted(by.items()):
        want = int(round(total * mixture.get(modality, 0.0) / norm)) if norm else len(items)
        idx = torch.randint(len(items), (want,), generator=g).tolist()
        out.extend(items[i] for i in idx)
    return out


class Trainer:
    columns: tuple[str, ...] = ("loss", "ce", "aux")  # what log.csv records after step and lr

    def __init__(self, model: torch.nn.Module, processor: Any, stage: Stage, examples: Sequence[dict[str, Any]],
                 out_dir: str | Path, seed: int = 0, progress: bool = True):
        self.model = model
        self.processor = processor
        self.stage = stage
        self.examples = mix(examples, stage.mixture, seed)
        self.out = Path(out_dir) / stage.name
        self.seed = seed
        self.progress = progress
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.encode = EncodedCache(processor)

    # ---- state
    def _state_dir(self) -> Path:
        return self.out / "state"

    def save_state(self, step: int, optimizer, scheduler) -> None:
        if self.rank != 0:
            return
        d = self._state_dir()
        d.mkdir(parents=True, exist_ok=True)
        trainable = {n: p.detach().contiguous() for n, p in self._core().named_parameters() if p.requires_grad}
        save_file(trainable, str(d / "trainable.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                    "rng": torch.get_rng_state()}, d / "trainer.pt.tmp")
        os.replace(d / "trainer.pt.tmp", d / "trainer.pt")

    def load_state(self, optimizer, scheduler) -> int:
        d = self._state_dir()
        if not (d / "trainer.pt").is_file():
            return 0
        self._core().load_state_dict(load_file(str(d / "trainable.safetensors")), strict=False)
        state = torch.load(d / "trainer.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        return int(state["step"])

    def _core(self) -> torch.nn.Module:
        return unwrap(self.model)

    # ---- the loop
    def loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        core = self._core()
        labels = batch.extras["labels"]
        out = self.model(inputs_embeds=core.embed(batch), attention_mask=batch.attention_mask,
                         position_ids=batch.position_ids, labels=labels, labels_only_logits=True,
                         token_weights=batch.extras["token_weights"] if self.stage.aux else None)
        logs = {"ce": out.loss.item()}
        return self.with_aux(out.loss, out.aux_loss, logs), logs

    def with_aux(self, loss: torch.Tensor, aux: torch.Tensor | None, logs: dict[str, float]) -> torch.Tensor:
        """``loss`` plus the decaying load-balancing loss when the stage trains with it; logs both."""
        if self.stage.aux and aux is not None:
            cfg = self._core().config
            lam = aux_weight(self._step, cfg.l_aux_weight, cfg.min_l_aux_weight, cfg.l_aux_weight_decay_steps)
            loss = loss + lam * aux
            logs["aux"] = aux.item()
        logs["loss"] = loss.item()
        return loss

    def parts(self, n: int) -> list[list[int]]:
        """Row indices of each micro-batch of ``n`` rows (gradient accumulation), empty ones left out."""
        return [p for p in (list(range(n))[k::self.stage.grad_accum] for k in range(self.stage.grad_accum)) if p]

    def micro_losses(self, rows: list[dict[str, Any]]) -> Iterator[tuple[torch.Tensor, dict[str, float]]]:
        """The loss of each micro-batch of a step's rows; preference stages override this to sample, reward
        and score answers instead."""
        for part in self.parts(len(rows)):
            examples = [rows[i] for i in part]
            yield self.loss(collate(self.processor, examples, self._core().config.aux_balance_weight, self.encode))

    def run(self, stop_after: int | None = None) -> Path:
        """Train to ``stage.steps`` (or stop early after ``stop_after`` steps, to test resume)."""
        torch.manual_seed(self.seed)
        trained = freeze(self._core(), self.stage.trainable)
        params = [p for p in self._core().parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.stage.lr, weight_decay=self.stage.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(self.stage))
        start = self.load_state(optimizer, scheduler)
        if self.world > 1 and not hasattr(self.model, "module"):
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.model, find_unused_parameters=True)
        self.model.train()
        per_epoch = math.ceil(len(self.examples) / self.stage.batch_size)
        log_path = self.out / "log.csv"
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            (self.out / "stage.json").write_text(json.dumps({**asdict(self.stage), "trained": len(trained)}, indent=2))
        from tqdm import tqdm

        bar = tqdm(range(start, self.stage.steps), initial=start, total=self.stage.steps, desc=self.stage.name,
                   disable=not self.progress or self.rank != 0)
        for step in bar:
            self._step = step
            epoch, k = divmod(step, per_epoch)
            rows = batches(self.examples, self.stage.batch_size, self.seed, epoch)[k][self.rank::self.world]
            optimizer.zero_grad(set_to_none=True)
            logs: dict[str, float] = {}
            for loss, logs in self.micro_losses(rows):
                if not loss.requires_grad:  # e.g. a text-only batch in a connectors-only stage: a zero gradient,
                    loss = loss + sum(p.sum() for p in params) * 0.0  # still run backward so DDP ranks stay in step
                (loss / self.stage.grad_accum).backward()
            torch.nn.utils.clip_grad_norm_(params, self.stage.clip)
            optimizer.step()
            scheduler.step()
            if self.rank == 0:
                new = not log_path.exists() or step == 0
                with open(log_path, "w" if step == 0 else "a", newline="") as f:
                    writer = csv.writer(f)
                    if new:
                        writer.writerow(["step", "lr", *self.columns])
                    writer.writerow([step, scheduler.get_last_lr()[0], *(logs.get(c, "") for c in self.columns)])
                bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.3f}")
            done = step + 1
            if done % self.stage.checkpoint_every == 0 or done == self.stage.steps or done == stop_after:
                self.save_state(done, optimizer, scheduler)
            if stop_after is not None and done >= stop_after:
                break
        bar.close()
        if self.rank == 0 and (stop_after is None or stop_after >= self.stage.steps):
            from unimoe.train.curves import plot_curves

            plot_curves(log_path, self.out / "loss.png")
        return self.out
