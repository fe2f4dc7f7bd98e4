"""The progressive recipe (reference §6.2, Uni-MoE-2.0 Table 2) as a chain of stages over one model:

    alignment (connectors only, dense twin) -> warmup (dense experts) -> upcycle (dense -> MoE, §1.9)
    -> moe (MoE fine-tuning with the aux loss) -> anneal (everything, re-balanced modality mixture)

and, from a trained model, the preference stages (``kind: gspo`` / ``kind: dpo``, :mod:`unimoe.train.preference`).
A v1 model (``moe_type: topk_lora``) has no dense twin: its early stages train the MoE model itself.

Each stage writes ``<out>/<stage>/model`` (safetensors, released layout) and is skipped when that exists,
so an interrupted recipe resumes at the stage (and, inside it, at the step) where it stopped.

Recipe keys besides the stages: ``model`` (a preset), ``config`` (field overrides of that preset, e.g. the
routing ablations' ``mlp_dynamic_top_p: 0``), ``init_from`` (a saved model to start from instead of a fresh
one, e.g. the main recipe's warm-up for the ablations), ``data`` (``root``: where the generated training
split lives, default ``<out_dir>/data``), ``seed`` and ``out_dir``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from unimoe.checkpoint import from_pretrained, save_pretrained
from unimoe.config import UniMoEConfig
from unimoe.omni import UniMoEOmni
from unimoe.processor import Processor
from unimoe.tokenizer import load_tokenizer
from unimoe.train.omniworld import MODALITIES, training_examples
from unimoe.train.preference import DPOTrainer, GSPOTrainer
from unimoe.train.trainer import Stage, Trainer, unwrap
from unimoe.train.upcycle import dense_config, upcycle

DENSE_STAGES = ("alignment", "warmup")
TRAINERS: dict[str, type[Trainer]] = {"sft": Trainer, "gspo": GSPOTrainer, "dpo": DPOTrainer}


def run_recipe(recipe: dict[str, Any], stages: dict[str, dict[str, Any]],
               log: Callable[[str], None] = print) -> Path:
    out = Path(recipe["out_dir"])
    seed = int(recipe.get("seed", 0))
    moe_cfg = UniMoEConfig.preset(recipe["model"]).replace(**(recipe.get("config") or {}))
    data = recipe.get("data", {})
    root = Path(data.get("root") or out / "data")
    with _rank_zero_first():  # one process writes the generated split; under torchrun the others then read it
        examples = list(training_examples(root, n=int(data.get("n_per_modality", 100)), seed=seed,
                                          modalities=tuple(data.get("modalities", MODALITIES))))
    processor = Processor.for_config(moe_cfg, load_tokenizer())
    model: torch.nn.Module | None = None
    if recipe.get("init_from"):
        log(f"starting from {recipe['init_from']}")
        model = _load(recipe["init_from"])
    for name in recipe["stages"]:
        final = out / name / "model"
        if (final / "config.json").is_file():
            log(f"[{name}] done earlier: loading {final}")
            model = _load(final)
            continue
        if name == "upcycle":
            torch.manual_seed(seed)
            model = upcycle(model, UniMoEOmni(moe_cfg))  # every rank computes the same (seeded) result
        else:
            if model is None:
                torch.manual_seed(seed)
                dense = name in DENSE_STAGES and moe_cfg.moe_type == "dynamic"
                model = UniMoEOmni(dense_config(moe_cfg) if dense else moe_cfg)
            stage = Stage.from_dict({"name": name, **stages[name]})
            log(f"[{name}] {stage.steps} steps, training {', '.join(stage.trainable)}")
            trainer = TRAINERS[stage.kind](model, processor, stage, examples, out, seed=seed)
            trainer.run()
            model = trainer._core()
        _save_once(model, final)
    if recipe.get("export_dir") and int(os.environ.get("RANK", 0)) == 0:
        export(model, out, Path(recipe["export_dir"]), recipe)
        log(f"exported {recipe['export_dir']}")
    return out / recipe["stages"][-1] / "model"


def export(model: torch.nn.Module, out: Path, dest: Path, recipe: dict[str, Any]) -> Path:
    """The shipped form of a trained model: bf16 weights (half the bytes; loaded into the harness's dtype),
    the resolved recipe that made them, and every stage's loss log and curve under ``training/``."""
    import copy
    import shutil

    import yaml

    core = copy.deepcopy(unwrap(model)).to(torch.bfloat16)
    core.config = core.config.replace(torch_dtype="bfloat16")
    if dest.exists():
        shutil.rmtree(dest)
    save_pretrained(core, dest)
    (dest / "training").mkdir()
    (dest / "training" / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    for name in recipe["stages"]:
        for log_file in ("log.csv", "loss.png"):
            if (out / name / log_file).is_file():
                shutil.copy(out / name / log_file, dest / "training" / f"{name}-{log_file}")
    return dest


def _load(directory: str | Path) -> torch.nn.Module:
    """A saved model in float32, whatever it was stored in (the shipped weights are bf16): training and its
    inputs (pixels, log-mel) are float32."""
    return from_pretrained(directory, model_class=UniMoEOmni, dtype=torch.float32)


@contextlib.contextmanager
def _rank_zero_first() -> Iterator[None]:
    """Run the body on rank 0 first and on the other ranks after it (a no-op outside torchrun): two ranks
    generating the same files at once race on them."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized()
    if distributed and dist.get_rank() != 0:
        dist.barrier()
    yield
    if distributed and dist.get_rank() == 0:
        dist.barrier()


def _save_once(model: torch.nn.Module, directory: Path) -> None:
    """Rank 0 writes the stage's model; the other ranks wait for it (under torchrun)."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized()
    core = unwrap(model)
    if not distributed or dist.get_rank() == 0:
        save_pretrained(core, directory)
    if distributed:
        dist.barrier()
