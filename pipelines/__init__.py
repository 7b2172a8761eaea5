"""Thin orchestration of the stages (CLI, demo, server process); no domain logic."""

__all__ = ["cli", "demo", "server", "stages"]
