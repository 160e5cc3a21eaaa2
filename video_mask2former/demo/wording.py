"""Wording of the demo's messages."""

__all__ = ["plural"]


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless ``count`` is 1: "1 instance", "2 instances",
    "0 frames" (``noun`` is a regular noun)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
