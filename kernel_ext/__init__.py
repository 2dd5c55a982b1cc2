"""What runs inside a user's kernel: queue magics and job widgets for BatchHub (or any Slurm).

``%load_ext kernel_ext`` registers the magics of :mod:`kernel_ext.magics`
(``%sbatch``/``%%sbatch``, ``%squeue``, ``%sinfo``, ``%sacct``, ``%scancel``,
``%scontrol``, ``%sprio``, ``%sshare``). They reach the queue through
:mod:`kernel_ext.backend`: ``batch_backend.client`` when a BatchHub controller
answers, the standard Slurm commands otherwise. :mod:`kernel_ext.watch` holds
the job-watch widget that ``%%sbatch --wait`` shows in a notebook.

Importing this package is cheap (no IPython, ipywidgets or client import):
kernels load it at startup, so everything heavy is imported on first use.
"""


def load_ipython_extension(ipython):
    """``%load_ext kernel_ext``: register the queue magics on *ipython*."""
    from .magics import SlurmMagics
    ipython.register_magics(SlurmMagics)
