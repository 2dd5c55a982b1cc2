"""GPU detection and GRES strings."""

import re
import subprocess

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"]


def detect_gpus(run=subprocess.run):
    """Indices of the NVIDIA GPUs of this host (``nvidia-smi``); [] when none or on any error."""
    try:
        res = run(NVIDIA_SMI, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    if getattr(res, "returncode", 1) != 0:
        return []
    out = res.stdout or ""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    gpus = []
    for line in out.splitlines():
        line = line.strip()
        if line.isdigit():
            gpus.append(int(line))
    return sorted(set(gpus))


_SUFFIX = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def parse_gres(s):
    """Count per GRES name: 'gpu:2' -> {'gpu': 2}; 'gpu:tesla:2' -> {'gpu': 2}; '' -> {}.

    Also 'gpu' (count 1), 'gpu:a100:2(S:0-1)', 'gres/gpu:2', 'gpu:a100:1,gpu:k80:2' (summed),
    'gpu:2,mps:100', counts with K/M/G/T suffixes, '(null)'.
    """
    counts = {}
    if not s or s.strip() in ("(null)", "N/A", "none"):
        return counts
    s = re.sub(r"\([^)]*\)", "", s)  # socket binding '(S:0-1)'
    for item in s.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("gres/"):
            item = item[5:]
        parts = item.split(":")
        name, count = parts[0], 1
        if len(parts) > 1:
            m = re.fullmatch(r"(\d+)([KMGT]?)", parts[-1].strip(), re.I)
            if m:
                count = int(m.group(1)) * _SUFFIX[m.group(2).upper()]
        if name:
            counts[name] = counts.get(name, 0) + count
    return counts
