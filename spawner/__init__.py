"""JupyterHub spawner that runs each user's server as a BatchHub job (filled by the hub issue)."""
