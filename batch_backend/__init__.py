"""BatchHub's queue manager: a Slurm-compatible controller, node daemons, scheduler and CLI."""

__version__ = "0.1.0"
