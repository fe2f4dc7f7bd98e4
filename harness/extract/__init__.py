"""Answer-extraction rules: each registered by name and version (see :mod:`harness.extract.base`)."""

from harness.extract import basic, mathvision, mathvista, mcq, mmbench, mmmu, numeric  # noqa: F401  (register the built-in rules)
from harness.extract import logicvista  # noqa: F401,E402  (LogicVista's label-set reader)
