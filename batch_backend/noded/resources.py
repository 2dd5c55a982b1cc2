"""What this node really has, checked against what slurm.conf says it has.

A node daemon registers ``detect_real_resources()``; the controller (or the
daemon) calls ``check_node_resources`` and drains/downs the node with the
returned Slurm-style reason when the node is smaller than configured, unless
``config_overrides`` (slurm.conf ``SlurmdParameters=config_overrides``) is set.
Several virtual nodes may share one host: ``cpu_ids_for_node`` gives each its
slice of host CPUs (wrapping round when the host is oversubscribed) and
``pick_cpu_ids`` maps a job's allocated CPU slots on the node to host CPUs for
``sched_setaffinity``.
"""

import os

from . import gpu


def _meminfo_total_mb(path="/proc/meminfo"):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def detect_real_resources(detect_gpus=gpu.detect_gpus):
    """``{'cpus': int, 'memory_mb': int, 'gpus': [int, ...]}`` of this host.

    CPUs: the daemon's CPU affinity set (what a container/cpuset lets us use);
    memory: MemTotal of /proc/meminfo in MB (like slurmd's RealMemory);
    GPUs: NVIDIA indices from nvidia-smi.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return {"cpus": cpus, "memory_mb": _meminfo_total_mb(), "gpus": list(detect_gpus())}


def check_node_resources(configured, real, *, config_overrides=False):
    """Slurm-style reason why a node with ``real`` resources cannot be the ``configured`` node, or None.

    ``configured``: ``{'cpus': int, 'real_memory': int (MB), 'gres': 'gpu:2'}`` (missing keys are
    not checked); ``real``: as returned by :func:`detect_real_resources`. Reasons are joined with
    ', ' as slurmctld does, e.g. ``Low socket*core*thread count, Low CPUs``,
    ``Low RealMemory (reported:4000 < 100.00% of configured:8000)``,
    ``gres/gpu count reported lower than configured (0 < 2)``.
    """
    if config_overrides:
        return None
    reasons = []
    cfg_cpus = configured.get("cpus")
    if cfg_cpus and real.get("cpus", 0) < cfg_cpus:
        reasons.append("Low socket*core*thread count")
        reasons.append("Low CPUs")
    cfg_mem = configured.get("real_memory")
    if cfg_mem and real.get("memory_mb", 0) < cfg_mem:
        reasons.append(
            f"Low RealMemory (reported:{real.get('memory_mb', 0)} < 100.00% of configured:{cfg_mem})"
        )
    for name, want in gpu.parse_gres(configured.get("gres") or "").items():
        if name != "gpu":
            continue  # only GPUs are detected; other GRES are taken on trust
        have = len(real.get("gpus") or [])
        if have < want:
            reasons.append(f"gres/{name} count reported lower than configured ({have} < {want})")
    return ", ".join(reasons) or None


def cpu_ids_for_node(node_index, node_cpus, host_cpus):
    """Host CPU ids backing the ``node_cpus`` CPU slots of virtual node ``node_index``.

    Virtual node i takes host CPUs i*node_cpus ... (i+1)*node_cpus-1 of ``host_cpus``
    (sorted), modulo their number, so an oversubscribed host wraps round:
    ``cpu_ids_for_node(1, 4, [0, 1, 2, 3, 4, 5]) == [4, 5, 0, 1]``. [] when no host CPUs.
    """
    host = sorted(host_cpus)
    if not host or node_cpus <= 0:
        return []
    base = node_index * node_cpus
    return [host[(base + k) % len(host)] for k in range(node_cpus)]


def pick_cpu_ids(node_cpu_ids, alloc_slots):
    """Host CPUs for a job given its allocated CPU slots (0-based indices into the node's CPUs).

    Sorted, without duplicates (two slots may share a host CPU when oversubscribed);
    [] (no binding) when the node has no CPU map or the job has no slots.
    """
    if not node_cpu_ids:
        return []
    n = len(node_cpu_ids)
    return sorted({node_cpu_ids[s % n] for s in alloc_slots})
