"""JupyterHub side of BatchHub: each user's notebook server is a batch job.

``spawner.QueueSpawner`` (entry point ``jupyterhub.spawners: batchhub``) submits
the server through :mod:`batch_backend.client`, shows its queue progress, and
follows all of the hub's jobs with one shared watcher. See ``spawner/spawner.py``.
"""

from .spawner import QueueSpawner, QueueError  # noqa: F401
from .options import OptionsError  # noqa: F401

__all__ = ["QueueSpawner", "QueueError", "OptionsError"]
