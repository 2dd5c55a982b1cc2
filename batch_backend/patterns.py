"""Slurm filename patterns (``--output``/``--error``/``--input``, SLURM_DIALECT 2.2).

Clients build output paths from these codes and then look for the files
(submitit reads ``%A_%a_%t_log.out``, batchspawner ``..._%j.log``), so the
expansion must match Slurm's ``fname_create`` byte for byte. It is shared by
the node daemon (batch script files) and srun (per-task files).

Codes: ``%j`` raw job id; ``%J`` job id for the batch script, ``jobid.step``
in a step; ``%A`` array master id (the job id for non-array jobs); ``%a``
array index (4294967294, Slurm's NO_VAL, for non-array jobs); ``%b`` array
index modulo 10; ``%x`` job name; ``%u`` user; ``%N`` short node name; ``%n``
node index; ``%s`` ``batch`` for the script, the step number in srun; ``%t``
task rank (0 for the batch script); ``%%`` a literal ``%``. Digits after
``%`` (``%5j``, at most 10 as in Slurm) zero-pad numeric codes. An unknown
code is kept as typed. As in Slurm, a pattern containing a backslash is not
expanded at all; its backslashes are removed.
"""

__all__ = ["expand_output_pattern", "default_output", "NO_VAL"]

#: What Slurm prints for ``%a`` of a job that is not part of an array.
NO_VAL = 4294967294

_MAX_WIDTH = 10


def expand_output_pattern(pattern, *, job_id, array_job_id=None, array_task_id=None,
                          name, user, node, node_index=0, step="batch", task=None):
    """Expand the ``%`` codes of a Slurm filename pattern (see module docstring).

    *step* is ``"batch"`` for the batch script or the step number (int or
    digit string) for an srun step; *task* is the task rank (``None`` = 0).
    """
    if "\\" in pattern:
        return pattern.replace("\\", "")
    if "%" not in pattern:
        return pattern
    is_batch = str(step) == "batch"
    master = array_job_id if array_job_id is not None else job_id
    index = array_task_id if array_task_id is not None else NO_VAL
    short_node = str(node or "").split(".", 1)[0]
    numeric = {
        "j": lambda: int(job_id),
        "A": lambda: int(master),
        "a": lambda: int(index),
        "b": lambda: int(index) % 10 if array_task_id is not None else NO_VAL,
        "n": lambda: int(node_index),
        "t": lambda: int(task or 0),
    }
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "%" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < n and pattern[j].isdigit() and pattern[j].isascii():
            j += 1
        width = min(int(pattern[i + 1:j]), _MAX_WIDTH) if j > i + 1 else 0
        if j >= n:  # '%5' at the end: nothing to expand
            out.append(pattern[i:])
            break
        code = pattern[j]
        if code in numeric:
            out.append(str(numeric[code]()).zfill(width))
        elif code == "J":
            jid = str(int(job_id)).zfill(width)
            out.append(jid if is_batch else f"{jid}.{step}")
        elif code == "s":
            out.append("batch" if is_batch else str(int(step)).zfill(width))
        elif code == "x":
            out.append(str(name))
        elif code == "u":
            out.append(str(user))
        elif code == "N":
            out.append(short_node)
        elif code == "%":
            out.append("%")
        else:
            out.append(pattern[i:j + 1])
        i = j + 1
    return "".join(out)


def default_output(job_is_array):
    """Slurm's default stdout pattern: ``slurm-%A_%a.out`` for arrays, else ``slurm-%j.out``."""
    return "slurm-%A_%a.out" if job_is_array else "slurm-%j.out"
