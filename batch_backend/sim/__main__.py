"""``python -m batch_backend.sim``: see :mod:`batch_backend.sim.cli`."""

import sys

from .cli import main

sys.exit(main(prog="python -m batch_backend.sim"))
