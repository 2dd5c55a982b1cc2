"""BatchHub's embedded slurm.conf: this machine described as four virtual nodes.

Split from :mod:`batch_backend.conf` (which re-exports both functions) so the
parser stays small. BatchHub must work out of the box on a laptop or a single
VM, with no slurm.conf written by hand: :func:`default_conf_text` produces one
from what :func:`detect_host` finds, in ordinary slurm.conf syntax so that an
admin can copy it and edit it.
"""

import os

__all__ = ["detect_host", "default_conf_text"]


def _cgroup_memory_mb():
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if (text.isascii() and text.isdigit()):
            return int(text) // (1024 * 1024)
    return None


def detect_host():
    """``{'cpus': usable CPUs, 'memory_mb': usable memory}`` of this machine.

    CPUs come from the affinity mask (what this process may use); memory is
    /proc/meminfo MemTotal, lowered to a cgroup memory limit when one is set
    (containers).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    memory_mb = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory_mb = int(line.split()[1]) // 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if memory_mb is None:
        try:
            memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        except (ValueError, OSError, AttributeError):
            memory_mb = 1024
    limit = _cgroup_memory_mb()
    if limit is not None and 0 < limit < memory_mb:
        memory_mb = limit
    return {"cpus": max(1, cpus), "memory_mb": max(1, memory_mb)}


def default_conf_text(state_dir, host=None):
    """The embedded slurm.conf: this machine split into four virtual nodes.

    Each node gets ``max(ncpu // 4, min(ncpu, 2))`` CPUs (so small machines
    still have multi-CPU nodes, oversubscribed) and three quarters of the
    memory divided by four. KillWait is 5 s rather than Slurm's 30 so that
    cancelled jobs leave COMPLETING quickly.
    """
    host = host or detect_host()
    ncpu = int(host["cpus"])
    cpus = max(ncpu // 4, min(ncpu, 2), 1)
    memory = max(1, int(int(host["memory_mb"]) * 0.75 / 4))
    state = f'"{state_dir}"' if any(c.isspace() or c == "#" for c in str(state_dir)) \
        else state_dir
    return (
        "# BatchHub default configuration, generated for this machine\n"
        f"# ({ncpu} CPUs, {host['memory_mb']} MB) as four virtual nodes.\n"
        "ClusterName=batchhub\n"
        "SlurmctldTimeout=120\n"
        "SlurmdTimeout=30\n"
        "KillWait=5\n"
        "MinJobAge=300\n"
        "MaxArraySize=1001\n"
        f"StateSaveLocation={state}\n"
        f"NodeName=n[1-4] CPUs={cpus} RealMemory={memory} State=UNKNOWN\n"
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )
