"""Where the daemons keep their files, and where clients find them.

One rule for everybody (daemons here, clients in ``client.default_address``):
``$BATCHHUB_HOME`` if set (tests, personal clusters); otherwise
``/var/lib/batchhub`` with the socket in ``/run/batchhub`` for root, and
``~/.batchhub`` for an unprivileged user (single-account mode).
"""

import os
from dataclasses import dataclass

from .client import SYSTEM_SOCKET


@dataclass
class Layout:
    home: str
    state_dir: str
    run_dir: str
    log_dir: str
    spool_dir: str
    shared_dir: str
    socket: str
    conf_path: str

    def ensure(self):
        for d in (self.home, self.state_dir, self.run_dir, self.log_dir, self.spool_dir, self.shared_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.shared_dir, 0o1777)
        os.chmod(self.spool_dir, 0o755)
        return self


def layout():
    home = os.environ.get("BATCHHUB_HOME")
    system = home is None and os.getuid() == 0
    if home is None:
        home = "/var/lib/batchhub" if system else os.path.join(os.path.expanduser("~"), ".batchhub")
    run_dir = "/run/batchhub" if system else os.path.join(home, "run")
    socket = os.environ.get("BATCHHUB_SOCKET") or (SYSTEM_SOCKET if system else os.path.join(run_dir, "controller.sock"))
    conf = os.environ.get("BATCHHUB_CONF") or os.environ.get("SLURM_CONF") or (
        "/etc/batchhub/slurm.conf" if system else os.path.join(home, "slurm.conf"))
    return Layout(home=home, state_dir=os.path.join(home, "state"), run_dir=run_dir,
                  log_dir=os.path.join(home, "log"), spool_dir=os.path.join(home, "spool"),
                  shared_dir=os.path.join(home, "shared"), socket=socket, conf_path=conf)
