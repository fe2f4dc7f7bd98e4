"""``python -m harness <command> [key=value ...]``.

Commands that evaluate (``run``, ``score``, ``validate``) are Hydra apps over ``configs/`` (so overrides and
``-m`` sweeps work); ``list``, ``leaderboard`` and ``compare`` take plain ``key=value`` arguments.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any, Callable

HELP = """usage: python -m harness <command> [key=value ...]

commands:
  run          task=<task|group> model=<model> [data=sample|full] [data_dir=DIR] [limit=N] [batch_size=N]
               [seed=S] [shard=i/n] [stage=all|infer] [cache=true|false] [output_dir=results]
               [judge=<judge config>]  (tasks scored by an LLM judge, e.g. judge=gpt4o_mathvista)
               [num_workers=2] [prefetch_depth=2]  (media decoded ahead by worker processes; 0: inline)
               under torchrun: one rank per process, rank 0 writes one run [dist_timeout_s=1800]
               Hydra sweeps: python -m harness run -m task=videomme,mmbench_en_dev model=random
  score        task=<task> predictions=<file.jsonl>   score {doc_id, prediction} rows made elsewhere
  validate     task=<task|group> [judge=<config>]     oracle run on the sample; fails unless every metric is best
  list         tasks|groups|models                    one line each, tab-separated
  leaderboard  [output_dir=results]                   rebuild per-modality leaderboards (md, csv, tex)
  compare      baseline=<results.json> candidate=<results.json> [tolerance=0.0]
               exit status 1 when a metric regressed beyond tolerance
  routing      run=<run dir or results.json>          print the per-modality routing report of a run
  ablation     runs=<results folder> [out=table.md]   one row per run: task scores, active experts, null rate
  merge        runs=<run dir>,<run dir>,... [output_dir=DIR]   the shard=i/n runs of one evaluation, scored
               as one run (refused, exit status 2, unless every shard is there once, same model and tasks)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("run", "score", "validate"):
        return _hydra(command, rest)
    if command == "list":
        from harness.listing import list_command

        return list_command(rest)
    if command == "leaderboard":
        from harness.leaderboard import build_leaderboards

        args = _kv(rest)
        written = build_leaderboards(Path(args.get("output_dir", "results")))
        for path in written:
            print(path)
        return 0
    if command == "compare":
        from harness.compare import compare_command

        return compare_command(_kv(rest))
    if command == "routing":
        from harness.routing_report import routing_command

        return routing_command(_kv(rest))
    if command == "merge":
        from harness.merge import merge_command

        return merge_command(_kv(rest))
    if command == "ablation":
        from harness.ablation import ablation_command

        return ablation_command(_kv(rest))
    print(f"unknown command {command!r}\n\n{HELP}", file=sys.stderr)
    return 2


def _kv(args: list[str]) -> dict[str, str]:
    out = {}
    for a in args:
        key, sep, value = a.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {a!r}")
        out[key.lstrip("+")] = value
    return out


def _hydra(command: str, overrides: list[str]) -> int:
    """Run one Hydra app; sweeps call ``app`` once per combination and the worst exit code wins."""
    import hydra
    from omegaconf import DictConfig

    from harness.catalog import CONFIG_DIR

    codes: list[int] = []
    handlers: dict[str, Callable[[DictConfig], int]] = {
        "run": _run,
        "score": _score,
        "validate": _validate,
    }

    @hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
    def app(cfg: DictConfig) -> None:
        codes.append(handlers[command](cfg))

    saved = sys.argv
    sys.argv = [f"harness {command}", *overrides]
    try:
        app()
    finally:
        sys.argv = saved
    return max(codes) if codes else 1


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _run(cfg: Any) -> int:
    from harness.evaluate import evaluate_from_config

    _seed_everything(int(cfg.seed))
    summary = evaluate_from_config(cfg)
    return summary.exit_code


def _score(cfg: Any) -> int:
    from harness.evaluate import score_from_config

    return score_from_config(cfg).exit_code


def _validate(cfg: Any) -> int:
    from harness.evaluate import validate_from_config

    return validate_from_config(cfg)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
