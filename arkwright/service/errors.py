"""What the control plane raises to its callers, and whose fault each one is."""

from __future__ import annotations


class AdmissionError(ValueError):
    """The submission can never run here (the caller's fault, a 422); nothing was stored."""


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key was used for a different submission (a 409)."""


class StoreUnavailable(RuntimeError):
    """The database did not take a write (or a read it needed): nobody's fault in the
    request, a 503. Nothing the call asked for happened: the core was left as the
    database has it (rebuilt from it when a commit failed after the core had moved)."""


class NotLeader(RuntimeError):
    """This replica lost the leadership (its fencing token is stale): the write was
    refused and the replica stops driving the backends."""
