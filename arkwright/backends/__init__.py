"""Backends carry out the core's decisions on a site and report back what happened."""

from arkwright.backends.base import Backend, Outcome, RunHandle, RunRequest

__all__ = ["Backend", "Outcome", "RunHandle", "RunRequest"]
