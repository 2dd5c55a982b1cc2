"""Scheduling policy: pure functions of (state, now) -> decisions, shared by controller and simulator."""
