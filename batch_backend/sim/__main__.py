"""``python -m batch_backend.sim``: see :func:`batch_backend.sim.simulator.main`."""

import sys

from .simulator import main

sys.exit(main())
