"""The node daemon (slurmd's role): registers a node, launches and watches its jobs."""
