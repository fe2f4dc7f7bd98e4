"""``python -m unimoe.train [recipe=unimoe_tiny] [key=value ...]``: run a training recipe (Hydra over
``configs/train/``; e.g. ``stages.moe.steps=50`` or ``seed=1``). Under ``torchrun`` every process runs it
and the trainer shards each batch across them (DDP)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "train"


def main(argv: list[str] | None = None) -> int:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    args = list(sys.argv[1:] if argv is None else argv)
    recipe_name = next((a.split("=", 1)[1] for a in args if a.startswith("recipe=")), "unimoe_tiny")
    overrides = [a for a in args if not a.startswith("recipe=")]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name=recipe_name, overrides=overrides), resolve=True)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo" if not __import__("torch").cuda.is_available() else "nccl")
    from unimoe.train.recipe import run_recipe

    final = run_recipe(cfg, cfg["stage"])
    print(f"final model: {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
