"""Node records on the controller side, and the command queue to each node daemon.

Node daemons pull their work: they hold a long-poll request open
(``GET /v1/noded/{name}/commands``) that the controller answers the moment a
command (launch, cancel, signal) is queued. This needs no listening socket on
the node, works the same across hosts, and a dropped poll is simply the next
heartbeat. Commands carry sequence numbers; a node acknowledges by asking for
the ones after the last it processed, and a controller restart changes the
``epoch`` so nodes know to re-register.
"""

import asyncio
import time

from ..sched.placement import NodeView, gpu_count

#: Slurm's reason for a node it set DOWN itself because its daemon stopped answering
NOT_RESPONDING_REASON = "Not responding"


class NodeRecord:
    """One node: its configuration, admin state, liveness and allocations."""

    def __init__(self, conf, index):
        self.name = conf["name"]
        self.index = index
        self.cpus = conf["cpus"]
        self.real_memory = conf["real_memory"]
        self.gres = conf.get("gres", "")
        self.gpus = gpu_count(self.gres)
        self.features = list(conf.get("features", []))
        self.address = conf.get("address") or self.name
        self.hostname = conf.get("hostname") or self.name
        self.weight = conf.get("weight", 1)
        self.partitions = []
        # admin state: "" (none), "DRAIN", "DOWN"; system DOWN has its own reason
        self.admin_state = ""
        self.reason = ""
        self.reason_time = None
        self.reason_user = ""
        self.resource_problem = ""   # set when the daemon reports fewer resources
        self.registered = False
        self.last_seen = None
        self.boot_time = None
        self.last_busy = None
        self.daemon_info = {}
        self.alloc_cpus = 0
        self.alloc_memory = 0
        self.alloc_gpu_ids = set()
        self.jobs = set()
        self.not_responding = False
        # command queue
        self.commands = []       # list of (seq, command dict)
        self.next_seq = 1
        self.waiter = None       # asyncio.Event set when commands arrive

    # -- state ---------------------------------------------------------------
    def down_for_no_response(self):
        """DOWN by the controller itself (SlurmdTimeout), not by an admin: ReturnToService may lift it."""
        return self.admin_state == "DOWN" and self.reason == NOT_RESPONDING_REASON and self.reason_user == "slurm"

    def usable(self):
        return (self.registered and not self.not_responding and not self.admin_state
                and not self.resource_problem)

    def state(self):
        """Slurm's base node state, plus flags (NOT_RESPONDING, DRAIN)."""
        flags = []
        if self.not_responding:
            flags.append("NOT_RESPONDING")
        if self.admin_state == "DOWN" or self.resource_problem or (not self.registered and self.not_responding):
            base = "DOWN"
        elif not self.registered:
            base = "UNKNOWN"
        elif self.alloc_cpus >= self.cpus:
            base = "ALLOCATED"
        elif self.alloc_cpus or self.jobs:
            base = "MIXED"
        else:
            base = "IDLE"
        if self.admin_state == "DRAIN":
            flags.append("DRAIN")
            if base != "DOWN":
                base = "DRAINING" if self.jobs else "DRAINED"
        return base, flags

    def view(self):
        return NodeView(self.name, self.cpus, self.real_memory, self.gpus, frozenset(self.features),
                        self.alloc_cpus, self.alloc_memory, set(self.alloc_gpu_ids), self.usable(),
                        len(self.jobs))

    def template(self):
        return NodeView(self.name, self.cpus, self.real_memory, self.gpus, frozenset(self.features))

    def to_dict(self):
        base, flags = self.state()
        reason = self.reason or self.resource_problem or ("Not responding" if self.not_responding else "")
        return {
            "name": self.name, "state": base, "state_flags": flags,
            "reason": reason, "reason_time": self.reason_time, "reason_user": self.reason_user,
            "cpus": self.cpus, "alloc_cpus": self.alloc_cpus,
            "real_memory": self.real_memory, "alloc_memory": self.alloc_memory,
            "free_memory": self.daemon_info.get("free_memory_mb"),
            "cpu_load": self.daemon_info.get("cpu_load"),
            "gres": self.gres, "alloc_gpus": len(self.alloc_gpu_ids),
            "features": self.features, "partitions": self.partitions,
            "address": self.daemon_info.get("address") or self.address,
            "hostname": self.daemon_info.get("hostname") or self.hostname,
            "boot_time": self.boot_time, "last_busy": self.last_busy,
            "jobs": sorted(self.jobs), "arch": self.daemon_info.get("arch", ""),
            "os": self.daemon_info.get("os", ""), "version": self.daemon_info.get("version", ""),
        }

    # -- allocations ---------------------------------------------------------
    def allocate(self, job_id, cpus, memory, gpu_ids):
        self.alloc_cpus += cpus
        self.alloc_memory += memory
        self.alloc_gpu_ids.update(gpu_ids)
        self.jobs.add(job_id)
        self.last_busy = time.time()

    def release(self, job_id, cpus, memory, gpu_ids):
        if job_id not in self.jobs:
            return
        self.jobs.discard(job_id)
        self.alloc_cpus = max(0, self.alloc_cpus - cpus)
        self.alloc_memory = max(0, self.alloc_memory - memory)
        self.alloc_gpu_ids.difference_update(gpu_ids)
        self.last_busy = time.time()

    # -- commands ------------------------------------------------------------
    def push(self, command):
        self.commands.append((self.next_seq, command))
        self.next_seq += 1
        if self.waiter is not None:
            self.waiter.set()

    def pending_after(self, after):
        """Commands with seq > after; older ones are acknowledged and dropped."""
        self.commands = [(s, c) for s, c in self.commands if s > after]
        return [dict(c, seq=s) for s, c in self.commands]

    async def wait_commands(self, after, timeout):
        cmds = self.pending_after(after)
        if cmds or timeout <= 0:
            return cmds
        self.waiter = event = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if self.waiter is event:
                self.waiter = None
        return self.pending_after(after)


# -- node daemon events ---------------------------------------------------------------------
# kind -> {field: accepted types}; a node daemon's report is checked whole before any of
# it is applied, so a malformed batch is a 400 that changes nothing (never a 500 half-way).
_INT = (int,)
_OPT_INT = (int, type(None))
_OPT_NUM = (int, float, type(None))
_OPT_STR = (str, type(None))
EVENT_FIELDS = {
    "started": {"job_id": _INT, "pid": _OPT_INT, "time": _OPT_NUM},
    "ended": {"job_id": _INT, "state": (str,), "exit_code": _OPT_INT, "exit_signal": _OPT_INT,
              "reason": _OPT_STR, "time": _OPT_NUM, "max_rss_mb": _OPT_NUM},
    "task_ended": {"job_id": _INT, "step_id": (int, str), "rank": (int, str), "exit_code": _OPT_INT,
                   "exit_signal": _OPT_INT, "time": _OPT_NUM},
    "stats": {"cpu_load": _OPT_NUM, "free_memory_mb": _OPT_NUM},
    "shutdown": {},
}
_REQUIRED = {"started": ("job_id",), "ended": ("job_id", "state"), "task_ended": ("job_id", "step_id", "rank")}


def check_node_events(events):
    """Raise ValueError naming the first malformed event (unknown kinds pass: newer daemons)."""
    import math

    from ..model import FINAL_STATES
    if not isinstance(events, list):
        raise ValueError("field 'events' must be a list")
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get("event"), str):
            raise ValueError("each event must be an object with an 'event' name")
        fields = EVENT_FIELDS.get(ev["event"])
        if fields is None:
            continue
        for key in _REQUIRED.get(ev["event"], ()):
            if key not in ev:
                raise ValueError(f"{ev['event']} event without {key!r}")
        for key, types in fields.items():
            value = ev.get(key)
            if key in ev and ((isinstance(value, bool) and bool not in types) or not isinstance(value, types)):
                raise ValueError(f"{ev['event']} event: bad {key!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{ev['event']} event: bad {key!r}")
        if ev["event"] == "ended" and ev["state"] not in FINAL_STATES:
            raise ValueError(f"ended event: bad state {ev['state']!r}")
