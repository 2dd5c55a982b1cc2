"""Compatibility module: every name of the former single-file formatter module.

The Slurm-dialect output formatters now live one module per command, so a
command imports only its own (squeue runs on every poll; its startup time matters):

* ``formats_common``: ``pad`` and the ``-o`` engine (``Column``), time/state
  helpers, ``job_tres``/``job_std_path``, ``expand_array_rows``, ``sort_jobs``;
* ``formats_squeue``: squeue ``-o``/``-O`` columns and tables;
* ``formats_sacct``: sacct's field table and fixed-width/parsable tables;
* ``formats_scontrol``: ``scontrol show job|node|partition|config`` records;
* ``formats_sinfo``: sinfo groups and tables.

Importing this module loads all of them; new code should import the module it needs.
"""

from .. import model, timespec  # noqa: F401  (were module attributes here)
from .formats_common import (  # noqa: F401
    NULL, Column, _abs_path, _exit, _literal, _or_null, _parse_percent_format, _secs, _slurm_time, _SORT_KEYS,
    _state_rank, date_line, expand_array_rows, expand_array_spec, job_mem_total, job_state_code, job_std_path,
    job_tres, pad, sort_jobs, time_used)
from .formats_sacct import (  # noqa: F401
    SACCT_BRIEF, SACCT_DEFAULT, SACCT_FIELD_ORDER, SACCT_FIELDS, SACCT_LONG, SacctField, _acct_end, _acct_start,
    _acct_state, _b, _blank, _cpu_time, _derived_exit, _elapsed, _field, _fixed, _job_id_text, _nnodes,
    _step_id_text, _step_state, format_sacct, parse_sacct_fields, sacct_rows)
from .formats_scontrol import (  # noqa: F401
    _array_throttle, _node_alloc_tres, _node_cfg_tres, _record, format_config, format_job, format_node,
    format_partition, node_state_long)
from .formats_sinfo import (  # noqa: F401
    _COMPACT, _LONG, _NODE_BASE_NUM, _SINFO_NODE_KEYS, _SINFO_UNCUT_TITLES, MIN_FIELD_SIZE, SINFO_CODES,
    SINFO_DEFAULT, SINFO_LONG, SINFO_NODES, SINFO_NODES_LONG, SINFO_REASONS, SINFO_REASONS_LONG, SINFO_SUMMARIZE,
    SinfoGroup, _counts, _cpu_counts, _drain_base, _hostlist, _node_class, _part_name, _part_time, _range,
    _reason_user, format_sinfo, node_state_compact, node_state_name, node_state_num, parse_sinfo_format,
    sinfo_groups)
from .formats_squeue import (  # noqa: F401
    SQUEUE_BASE_FIELDS, SQUEUE_CODE_FIELDS, SQUEUE_CODES, SQUEUE_DEFAULT, SQUEUE_LONG, SQUEUE_LONG_FIELDS,
    SQUEUE_START, SQUEUE_STEPS, _UNCUT_TITLES, _USED, _g, _q_array_task, _q_end_time, _q_min_cpus, _q_min_mem,
    _q_pending_time, _q_reason_list, _q_time_left, _q_time_limit, _q_tres_per_node, _render, format_squeue,
    format_squeue_steps, parse_squeue_format, parse_squeue_long_format, squeue_fields)

__all__ = [
    "NULL", "Column", "date_line", "expand_array_rows", "expand_array_spec", "job_mem_total", "job_state_code",
    "job_std_path", "job_tres", "pad", "sort_jobs", "time_used",
    "SQUEUE_BASE_FIELDS", "SQUEUE_CODE_FIELDS", "SQUEUE_CODES", "SQUEUE_DEFAULT", "SQUEUE_LONG",
    "SQUEUE_LONG_FIELDS", "SQUEUE_START", "SQUEUE_STEPS", "format_squeue", "format_squeue_steps",
    "parse_squeue_format", "parse_squeue_long_format", "squeue_fields",
    "SACCT_BRIEF", "SACCT_DEFAULT", "SACCT_FIELD_ORDER", "SACCT_FIELDS", "SACCT_LONG", "SacctField",
    "format_sacct", "parse_sacct_fields", "sacct_rows",
    "format_config", "format_job", "format_node", "format_partition", "node_state_long",
    "MIN_FIELD_SIZE", "SINFO_CODES", "SINFO_DEFAULT", "SINFO_LONG", "SINFO_NODES", "SINFO_NODES_LONG",
    "SINFO_REASONS", "SINFO_REASONS_LONG", "SINFO_SUMMARIZE", "SinfoGroup", "format_sinfo", "node_state_compact",
    "node_state_name", "node_state_num", "parse_sinfo_format", "sinfo_groups",
]
