"""``python -m harness``: the command line (:mod:`harness.cli`)."""

import gc

from harness.cli import main

code = main()
# The interpreter's last garbage collection would visit and free every object torch and the model created, about
# 0.4 s of each process's (each rank's) exit; the run's files are written and closed by now, so skip it.
gc.freeze()
raise SystemExit(code)
