"""Scheduling simulator: replays workloads through the controller's own policy code.

``python -m batch_backend.sim TRACE.swf --nodes N --cpus C --policy fifo,backfill``
prints a metrics table; :func:`simulate` and :class:`Simulator` do the same from
Python. See :mod:`.simulator` (virtual clock, metrics) and :mod:`.swf` (the
Standard Workload Format).
"""

from .simulator import Metrics, Simulator, format_table, jobs_from_swf, simulate
from .swf import SwfError, SwfJob, load_swf, parse_swf, write_swf

__all__ = ["Metrics", "Simulator", "SwfError", "SwfJob", "format_table", "jobs_from_swf", "load_swf",
           "parse_swf", "simulate", "write_swf"]
