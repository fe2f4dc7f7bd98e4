"""``python -m unimoe.train [recipe=unimoe_tiny] [key=value ...]``: run a training recipe (Hydra over
``configs/train/``; e.g. ``stage.moe.steps=50`` or ``seed=1``).

``-m`` runs a Hydra multirun sweep, one recipe per combination, e.g. the routing ablations:
``python -m unimoe.train -m recipe=unimoe_tiny_ablation ablation=top_p,top_k,no_null,no_shared``.
Under ``torchrun`` every process runs the recipe and the trainer shards each batch across them (DDP).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "train"


def _train(cfg) -> None:
    from omegaconf import OmegaConf

    recipe = OmegaConf.to_container(cfg, resolve=True)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    from unimoe.train.recipe import run_recipe

    final = run_recipe(recipe, recipe["stage"])
    print(f"final model: {final}")


def main(argv: list[str] | None = None) -> int:
    """Hydra's own entry point (so ``-m`` sweeps and every override work), with ``recipe=<name>`` choosing
    the config file; the Hydra run folder is not created (each recipe writes under its ``out_dir``)."""
    import hydra

    args = list(sys.argv[1:] if argv is None else argv)
    recipe = next((a.split("=", 1)[1] for a in args if a.startswith("recipe=")), "unimoe_tiny")
    args = [a for a in args if not a.startswith("recipe=")]
    defaults = {"hydra.run.dir": ".", "hydra.output_subdir": "null", "hydra/job_logging": "disabled",
                "hydra/hydra_logging": "disabled", "hydra.sweep.dir": "runs/train/sweeps/${now:%Y%m%dT%H%M%S}"}
    args += [f"{k}={v}" for k, v in defaults.items() if not any(a.startswith(k + "=") for a in args)]
    saved = sys.argv
    sys.argv = [saved[0], *args]
    try:
        hydra.main(config_path=str(CONFIG_DIR), config_name=recipe, version_base="1.3")(_train)()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
