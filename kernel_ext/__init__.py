"""What runs inside a user's kernel: magics, dashboards, IPyParallel and Dask on BatchHub (filled by later issues)."""
