"""Slurm-dialect command-line tools (sbatch, squeue, ...): stdlib only, so they start fast."""
