"""The core's exceptions, in a module of their own: the compiled build of the core
(`scripts/build_core.py`) leaves this module as plain Python, since a compiled class
cannot derive from a built-in exception."""

from __future__ import annotations


class OverAllocation(RuntimeError):
    """Raised if a release or allocation would break the pool's GPU accounting."""


class SubmissionError(ValueError):
    """A job the core refuses to accept at all (malformed, duplicate)."""
