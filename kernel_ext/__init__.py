"""What runs inside a user's kernel: queue magics, job widgets and dashboards for BatchHub (or any Slurm).

``%load_ext kernel_ext`` registers the magics of :mod:`kernel_ext.magics`
(``%sbatch``/``%%sbatch``, ``%squeue``, ``%sinfo``, ``%sacct``, ``%scancel``,
``%scontrol``, ``%sprio``, ``%sshare``) and ``%ipcluster start|stop|status``
of :mod:`kernel_ext.ipcluster_magic` (IPyParallel on the launchers of
:mod:`kernel_ext.ipp`). They reach the queue through
:mod:`kernel_ext.backend`: ``batch_backend.client`` when a BatchHub controller
answers, the standard Slurm commands otherwise. :mod:`kernel_ext.watch` holds
the job-watch widget that ``%%sbatch --wait`` shows in a notebook;
:mod:`kernel_ext.widgets` the live queue and node dashboards, which also
export the instructors' usage view and the reservation list of
:mod:`kernel_ext.usage_view`; all refresh through :mod:`kernel_ext.poller`, and
:mod:`kernel_ext.reasons` says why a job waits, in plain words.

Importing this package is cheap (no IPython, ipywidgets or client import):
kernels load it at startup, so everything heavy is imported on first use.
"""


def load_ipython_extension(ipython):
    """``%load_ext kernel_ext``: register the queue magics on *ipython*."""
    from .ipcluster_magic import IPClusterMagics
    from .magics import SlurmMagics
    ipython.register_magics(SlurmMagics)
    ipython.register_magics(IPClusterMagics)
