"""The controller daemon (slurmctld's role): authoritative state, journal, API, scheduling."""
