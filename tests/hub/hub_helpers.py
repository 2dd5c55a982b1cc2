"""Small helpers shared by the hub tests."""


def messages(events):
    """The progress events' messages, one per line (what the spawn page shows)."""
    return "\n".join(e.get("message", "") for e in events)
