"""Authentication for callers that the kernel cannot vouch for (TCP): signed tokens."""
