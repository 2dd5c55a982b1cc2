"""Performance harness for BatchHub (`batchhub bench`)."""
