"""``python -m harness <command> [key=value ...]``.

Commands that evaluate (``run``, ``score``, ``validate``) are Hydra apps over ``configs/`` (so overrides and
``-m`` sweeps work); ``list``, ``leaderboard`` and ``compare`` take plain ``key=value`` arguments.
"""

from __future__ import annotations

import errno
import random
import sys
from pathlib import Path
from typing import Any, Callable

from harness.errors import ConfigError, HarnessError
from harness.schema import check_values

HELP = """usage: python -m harness <command> [key=value ...]
exit status: 0 done; 1 run not complete, regression, validation failure or a bug (traceback);
             2 a mistake in the command, its files or the environment (one line); 130 interrupted

commands:
  run          task=<task|group> model=<model> [data=sample|full] [data_dir=DIR] [limit=N] [batch_size=N]
               [seed=S] [shard=i/n] [stage=all|infer] [cache=true|false] [output_dir=results]
               [judge=<judge config>]  (tasks scored by an LLM judge, e.g. judge=gpt4o_mathvista)
               [num_workers=2] [prefetch_depth=2]  (media decoded ahead by worker processes; 0: inline)
               [nproc=N]  N ranks on this machine (data parallel, one run; like torchrun --nproc-per-node N)
               under torchrun: one rank per process, rank 0 writes one run [dist_timeout_s=1800]
               Hydra sweeps: python -m harness run -m task=videomme,mmbench_en_dev model=random
  score        task=<task> predictions=<file.jsonl>   score {doc_id, prediction} rows made elsewhere
  validate     task=<task|group> [judge=<config>]     oracle run on the sample; fails unless every metric is best
  list         tasks|groups|models                    one line each, tab-separated
  serve        model=<model> [host=127.0.0.1] [port=8000] [max_batch=16] [max_wait_ms=10] [max_queue=256]
               [api_key_env=VAR]                      OpenAI-compatible server (/v1/chat/completions, /v1/models)
  leaderboard  [output_dir=results]                   rebuild per-modality leaderboards (md, csv, tex)
  compare      baseline=<results.json> candidate=<results.json> [tolerance=0.0]
               exit status 1 when a metric regressed beyond tolerance
  routing      run=<run dir or results.json>          print the per-modality routing report of a run
  ablation     runs=<results folder> [out=table.md]   one row per run: task scores, active experts, null rate
  report       run=<run dir> [compare=<dir>,...] [out=<folder>] [trace=<doc_id>|none]
               one self-contained HTML page (routing figures, results, samples) + figures as PNG and PDF
  table        runs=<folder or dirs> [tasks=<task|group>] [format=latex|markdown|csv] [reported=<csv>]
               a paper comparison table: models x benchmarks, best bold, second underlined
  merge        runs=<run dir>,<run dir>,... [output_dir=DIR] [judge=<judge config> judge.<key>=<value>]
               the shard=i/n runs of one evaluation, scored
               as one run (refused, exit status 2, unless every shard is there once, same model and tasks)
"""


USER_ERROR = 2  # a mistake in the command, its files or the environment: one line on stderr
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
KV_KEYS = {
    "leaderboard": ("output_dir",),
    "compare": ("baseline", "candidate", "tolerance"),
    "routing": ("run",),
    "ablation": ("runs", "out"),
    "merge": ("runs", "output_dir", "judge", "judge.*"),  # judge.<key>: an override of the judge's config
}
# OSError numbers that describe the machine or the user's paths, not a bug in the harness
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                       errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ENOENT}


def say(line: str) -> None:
    """One line on stderr in a single write: ranks sharing a terminal (or a pipe) never interleave halves."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """The error boundary: user mistakes -> one line, exit 2; Ctrl-C -> exit 130; bugs keep their traceback."""
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        say("interrupted; rerun the same command to resume")
        return INTERRUPTED
    except HarnessError as e:
        say(f"error: {e}")
        return USER_ERROR
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            raise
        say(f"error: {describe_os_error(e)}")
        return USER_ERROR


def describe_os_error(e: OSError) -> str:
    """``cannot write results/x: No space left on device`` (the file, then the system's reason)."""
    where = f" {e.filename}" if e.filename else ""
    verb = "write" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "use"
    return f"cannot {verb}{where}: {e.strerror or e}"


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0
    command, rest = argv[0], argv[1:]
    if command in KV_KEYS:
        _kv(rest, command)  # refuse a mistyped key before any work
    if command == "run":
        from harness.launch import launch_ranks, split_nproc

        nproc, rest = split_nproc(rest)
        if nproc > 1:
            return launch_ranks(["run", *rest], nproc)
    if command in ("run", "score", "validate"):
        return _hydra(command, rest)
    if command == "list":
        from harness.listing import list_command

        return list_command(rest)
    if command == "leaderboard":
        from harness.leaderboard import build_leaderboards
        from harness.run_status import mark_dead_runs

        output_dir = Path(_kv(rest).get("output_dir", "results"))
        check_values({"output_dir": str(output_dir)})
        mark_dead_runs(output_dir / "runs")
        written = build_leaderboards(output_dir)
        for path in written:
            print(path)
        return 0
    if command == "compare":
        from harness.compare import compare_command

        return compare_command(_kv(rest))
    if command == "routing":
        from harness.routing_report import routing_command

        return routing_command(_kv(rest))
    if command == "serve":
        from harness.serve import serve_command

        return serve_command(_kv(rest))
    if command == "merge":
        from harness.merge import merge_command

        return merge_command(_kv(rest))
    if command == "ablation":
        from harness.ablation import ablation_command

        return ablation_command(_kv(rest))
    if command == "report":
        from harness.report.build import report_command

        return report_command(_kv(rest))
    if command == "table":
        from harness.table import table_command

        return table_command(_kv(rest))
    print(f"unknown command {command!r}\n\n{HELP}", file=sys.stderr)
    return USER_ERROR


def _kv(args: list[str], command: str | None = None) -> dict[str, str]:
    """``key=value`` arguments; with ``command``, only the keys ``KV_KEYS`` lists for it are accepted."""
    out = {}
    allowed = KV_KEYS.get(command or "")
    for a in args:
        key, sep, value = a.partition("=")
        key = key.lstrip("+")
        if not sep:
            raise ConfigError(f"{command or 'command'}: expected key=value, got {a!r}")
        if allowed is not None and key not in allowed and not ("judge.*" in allowed and key.startswith("judge.")):
            raise ConfigError(f"{command}: unknown key {key!r}; expected {', '.join(allowed)}")
        out[key] = value
    return out


def _hydra(command: str, overrides: list[str]) -> int:
    """Run one Hydra app; sweeps call ``app`` once per combination and the worst exit code wins.

    Every job's config is composed and checked first, so a bad value stops the command before any work. In a
    sweep, a job that meets a user error prints its line and the others still run; a bug or Ctrl-C stops the
    sweep and is re-raised outside Hydra (whose own handler would shorten the traceback and exit 1).
    """
    import hydra
    from omegaconf import DictConfig

    from harness.catalog import CONFIG_DIR
    from harness.schema import register

    register()
    check_overrides(overrides)
    codes: list[int] = []
    stopped: list[BaseException] = []
    sweep_dirs: set[str] = set()
    handlers: dict[str, Callable[[DictConfig], int]] = {
        "run": _run,
        "score": _score,
        "validate": _validate,
    }

    @hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
    def app(cfg: DictConfig) -> None:
        if stopped:
            return
        _note_sweep_dir(sweep_dirs)
        try:
            codes.append(handlers[command](cfg))
        except HarnessError as e:
            say(f"error: {e}")
            codes.append(USER_ERROR)
        except BaseException as e:  # noqa: B036  (Ctrl-C and bugs leave Hydra untouched; see above)
            stopped.append(e)

    saved = sys.argv
    sys.argv = [f"harness {command}", *overrides]
    try:
        app()
    finally:
        sys.argv = saved
        _redact_sweep_records(sweep_dirs)
    if stopped:
        raise stopped[0]
    return max(codes, default=0)  # no job ran: Hydra answered a flag such as --cfg or --help


def check_overrides(overrides: list[str]) -> None:
    """Compose the config of every job the overrides describe (each sweep combination) and check its values;
    raise :class:`ConfigError` with one line for the first problem. Hydra's own flags are left to Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from harness.catalog import CONFIG_DIR
    from harness.schema import CONFIG_GROUPS, check_group_choice

    if any(o.startswith("-") and o not in ("-m", "--multirun") for o in overrides):
        return  # --help, --cfg job, --info ...: Hydra answers those without running
    plain = [o for o in overrides if not o.startswith("-") and not o.startswith(("hydra.", "hydra/"))]
    try:
        parsed = OverridesParser.create().parse_overrides(plain)
    except Exception as e:
        raise ConfigError(_one_line(e)) from None
    for override in parsed:
        if override.key_or_group in CONFIG_GROUPS:
            values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                      else [override.get_value_element_as_str()])
            for value in values:
                check_group_choice(override.key_or_group, value)
    try:
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except Exception as e:
        raise ConfigError(_one_line(e)) from None
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for job in jobs:
            try:
                cfg = compose("config", overrides=job)
            except Exception as e:
                raise ConfigError(_one_line(e)) from None
            check_values(OmegaConf.to_container(cfg, resolve=False))  # type: ignore[arg-type]


def _one_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages (with the cause) on one line, minus the HYDRA_FULL_ERROR hint."""
    from hydra.errors import MissingConfigException

    if isinstance(e, MissingConfigException) and e.options is not None and e.missing_cfg_file:
        group, _, choice = e.missing_cfg_file.rpartition("/")
        return f"unknown {group or 'config'} {choice!r}; known: {', '.join(e.options)}"
    parts = [str(e)]
    cause = e.__cause__
    if cause is not None and str(cause) not in parts[0]:
        parts.append(str(cause).splitlines()[0])
    lines = [line.strip() for part in parts for line in part.splitlines()]
    keep = [line for line in lines if line and "HYDRA_FULL_ERROR" not in line and not line.startswith(
        ("object_type=", "full_key:", "reference_type="))]
    return ": ".join(keep)


def _note_sweep_dir(sweep_dirs: set[str]) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dirs.add(hydra_cfg.sweep.dir)


def _redact_sweep_records(sweep_dirs: set[str]) -> None:
    """Hydra records a sweep's command line and config in ``multirun.yaml``: secrets given there are removed."""
    from harness.secrets import redact_yaml_file

    for folder in sweep_dirs:
        redact_yaml_file(Path(folder) / "multirun.yaml")


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
