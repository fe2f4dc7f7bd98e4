"""Answer-extraction rules: each registered by name and version (see :mod:`harness.extract.base`)."""

from harness.extract import basic, mathvision, mathvista, mcq, mmbench, mmmu, numeric  # noqa: F401  (register the built-in rules)
