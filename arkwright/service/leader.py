"""Leader election: exactly one replica runs the loop and the backends.

PostgreSQL: a session-level advisory lock held on a dedicated connection. The server
releases it the moment that connection drops (the leader died, even by SIGKILL), and a
standby that polls for it takes over within its poll interval. Each new leader also takes
a new epoch in the leadership row (the fencing token, checked by every leader write),
so a leader that lost its lock but has not noticed yet cannot write.

SQLite: one replica on one file; it always leads. The same code path otherwise.

An API worker (`arkwright serve --workers N`, the processes beside the first) never
bids: it serves the API from the database and leaves the loop to its parent, on SQLite
and PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("arkwright.leader")
LOCK_KEY = 0x41524B57  # 'ARKW': the one advisory lock Arkwright takes


class Election(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class SoleLeader:
    """A database only one replica uses: that replica leads."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class NeverLead:
    """An API worker: serves requests, never runs the loop or the backends' actions."""

    def try_acquire(self) -> bool:
        return False

    def still_held(self) -> bool:
        return False

    def release(self) -> None:
        return None


class AdvisoryLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def try_acquire(self) -> bool:
        try:
            return bool(
                self._connect()
                .execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY})
                .scalar()
            )
        except SQLAlchemyError as exc:
            log.warning("leader election: %s", str(exc).splitlines()[0])
            self._drop()
            return False

    def still_held(self) -> bool:
        """Asks the server, on the lock's own connection, whether it still holds it."""
        if self._connection is None:
            return False
        try:
            held = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND objid = :key AND granted"
                ),
                {"key": LOCK_KEY},
            ).scalar()
            return bool(held)
        except SQLAlchemyError:
            self._drop()
            return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None


def election_for(engine: Engine | None, *, api_only: bool = False) -> Election:
    if api_only:
        return NeverLead()
    if engine is not None and engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return SoleLeader()
