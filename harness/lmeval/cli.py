"""``unimoe-harness-lm-eval``: lm-eval's command line with the ``unimoe_harness`` model registered."""

from __future__ import annotations


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    import harness.lmeval.model  # noqa: F401  (registers unimoe_harness)

    cli_evaluate()


if __name__ == "__main__":
    main()
