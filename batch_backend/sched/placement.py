"""Where can a job run? Node selection and task layout, as pure functions.

A node is offered as a :class:`NodeView` (free resources right now); a job as
its API dict. :func:`place` answers with an :class:`Allocation` or ``None``.
The same code answers "could this job *ever* run here?" by passing views of
empty nodes, which is how impossible requests are refused at submit time
("Requested node configuration is not available") instead of pending forever.
"""

from dataclasses import dataclass, field

from ..model import gpu_count  # noqa: F401 (re-exported: the scheduler's vocabulary)


@dataclass
class NodeView:
    """What the scheduler needs to know about one node, free resources included."""

    name: str
    cpus: int
    real_memory: int
    gpus: int = 0
    features: frozenset = frozenset()
    alloc_cpus: int = 0
    alloc_memory: int = 0
    alloc_gpu_ids: set = field(default_factory=set)
    usable: bool = True  # responding, not DOWN/DRAIN
    busy_jobs: int = 0

    @property
    def free_cpus(self):
        return self.cpus - self.alloc_cpus

    @property
    def free_memory(self):
        return self.real_memory - self.alloc_memory

    def free_gpu_ids(self):
        return [i for i in range(self.gpus) if i not in self.alloc_gpu_ids]

    def empty_copy(self):
        """The same node with nothing allocated and assumed up (for 'could it ever run')."""
        return NodeView(self.name, self.cpus, self.real_memory, self.gpus, self.features)


@dataclass
class Allocation:
    """Resources granted to a job, node by node, in node order."""

    nodes: list
    tasks_per_node: dict
    cpus_per_node: dict
    memory_per_node: dict
    gpus_per_node: dict  # node -> list of GPU indices

    def apply(self, views):
        """Subtract this allocation from node views (the scheduler's running tally)."""
        for name in self.nodes:
            v = views[name]
            v.alloc_cpus += self.cpus_per_node[name]
            v.alloc_memory += self.memory_per_node[name]
            v.alloc_gpu_ids.update(self.gpus_per_node.get(name, ()))
            v.busy_jobs += 1


def features_match(expr, features):
    """Evaluate a --constraint expression: '&' (and), '|' (or), ',' (and)."""
    if not expr:
        return True
    for conj in expr.replace(",", "&").split("&"):
        alternatives = [a.strip().strip("[]()") for a in conj.split("|")]
        if not any(a in features for a in alternatives if a):
            return False
    return True


def _node_capacity(job, view, exclusive):
    """How many tasks of ``job`` fit on ``view`` now (0 if none)."""
    if not view.usable:
        return 0
    if exclusive and view.busy_jobs:
        return 0
    c = job["cpus_per_task"]
    tasks = view.free_cpus // c
    if job.get("mem_per_cpu"):
        if exclusive and job["mem_per_cpu"] * view.free_cpus > view.free_memory:
            return 0  # an exclusive job is charged --mem-per-cpu for every CPU of the node (see place)
        tasks = min(tasks, view.free_memory // (job["mem_per_cpu"] * c))
    elif job.get("mem_per_node") and view.free_memory < job["mem_per_node"]:
        return 0
    if gpu_count(job.get("gres")) > len(view.free_gpu_ids()):
        return 0
    if job.get("ntasks_per_node"):
        tasks = min(tasks, job["ntasks_per_node"])
    return max(tasks, 0)


def spread_tasks(capacities, ntasks):
    """Tasks per node, as even as capacities allow (Slurm: -N 2 -n 4 -> 2(x2), -n 3 -> 2,1).

    ``capacities`` is [(node, max tasks)] in node order; every node gets at least
    one task; what a full node cannot take goes to the next ones with room.
    """
    n = len(capacities)
    base, extra = divmod(ntasks, n)
    tasks, left = {}, 0
    for i, (name, cap) in enumerate(capacities):
        want = base + (1 if i < extra else 0)
        tasks[name] = min(want, cap)
        left += want - tasks[name]
    for name, cap in capacities:
        if left <= 0:
            break
        more = min(cap - tasks[name], left)
        tasks[name] += more
        left -= more
    return tasks


def place(job, views, *, expand_hostlist=None):
    """Find an allocation for ``job`` on the ordered node ``views`` (of its partition).

    Block distribution like Slurm's default: nodes in order, each node filled
    to its capacity before the next. With ``-N`` the node count is exact;
    without it, as few nodes as needed.
    """
    exclusive = bool(job.get("exclusive"))
    excluded = set(expand_hostlist(job["exclude"])) if job.get("exclude") and expand_hostlist else set()
    required = expand_hostlist(job["nodelist_req"]) if job.get("nodelist_req") and expand_hostlist else []
    by_name = {v.name: v for v in views}
    if any(r not in by_name for r in required):
        return None
    want_nodes = job.get("num_nodes_req")  # exact -N, or None
    ntasks = job["num_tasks"]
    # Every task needs cpus_per_task CPUs of one node: when all free CPUs together are too
    # few, nothing below can succeed (the scheduler's head job often waits: skip the scan).
    if sum(v.cpus - v.alloc_cpus for v in views if v.usable and v.cpus > v.alloc_cpus) < \
            ntasks * (job.get("cpus_per_task") or 1):
        return None
    plain_fill = not want_nodes and not required  # the first nodes with room decide
    candidates, room = [], 0
    for v in [by_name[r] for r in required] + [v for v in views if v.name not in required]:
        if v.name in excluded or not features_match(job.get("features"), v.features):
            if v.name in required:
                return None  # a required node the job may not use: never skipped silently
            continue
        cap = _node_capacity(job, v, exclusive)
        if cap >= 1:
            candidates.append((v, cap))
            room += cap
            if plain_fill and room >= ntasks:
                break
        elif v.name in required:
            return None
    if want_nodes:
        if len(candidates) < want_nodes or want_nodes > ntasks:
            return None
        chosen = candidates[:want_nodes]
        if len(required) <= want_nodes and sum(cap for _, cap in chosen) < ntasks:
            # The first nodes are too full: prefer the roomiest ones (required stay).
            head = candidates[:len(required)]
            tail = sorted(candidates[len(required):], key=lambda vc: -vc[1])
            chosen = head + tail[:want_nodes - len(required)]
        if sum(cap for _, cap in chosen) < ntasks:
            return None
    else:
        chosen, room = [], 0
        for vc in candidates:
            if room >= ntasks and len(chosen) >= max(1, len(required)):
                break
            chosen.append(vc)
            room += vc[1]
        if room < ntasks or not chosen:
            return None
    if want_nodes:
        tasks = spread_tasks([(v.name, cap) for v, cap in chosen], ntasks)
    else:  # as few nodes as needed, each filled in turn (Slurm: -n 5 on 4-CPU nodes -> 4,1)
        tasks = {v.name: 1 for v, _ in chosen}
        left = ntasks - len(chosen)
        for v, cap in chosen:
            more = min(cap - 1, left)
            tasks[v.name] += more
            left -= more
    alloc = Allocation([v.name for v, _ in chosen], tasks, {}, {}, {})
    gpus = gpu_count(job.get("gres"))
    for v, _ in chosen:
        cpus = v.free_cpus if exclusive else tasks[v.name] * job["cpus_per_task"]
        alloc.cpus_per_node[v.name] = cpus
        if job.get("mem_per_cpu"):
            mem = job["mem_per_cpu"] * cpus
        else:
            mem = job.get("mem_per_node") or 0
        alloc.memory_per_node[v.name] = mem
        alloc.gpus_per_node[v.name] = v.free_gpu_ids()[:gpus] if gpus else []
    return alloc
