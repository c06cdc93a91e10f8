"""Requests between replicas: a standby asks, the leader carries out and answers.

A replica that does not lead has no authority over the core, so the actions that need
it (cancel a job, cordon a pool, mark a site, reload programmes) are written to
control_requests; the leader carries them out at its next step and records the answer,
which the standby waits for (bounded). Each action is idempotent, so one that a dying
leader carried out but did not answer is harmless to repeat.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from arkwright.service.errors import NotLeader, StoreUnavailable

if TYPE_CHECKING:
    from arkwright.service.control import ControlPlane

log = logging.getLogger("arkwright.control")
REQUEST_WAIT_S = 15.0  # a standby waits this long for the leader to carry out an action


def ask_leader(cp: ControlPlane, kind: str, target: str, actor: str, args: dict) -> str | None:
    """A standby's action for the leader; waits (bounded) for its answer."""
    request = cp.store.ask_leader(kind, target, actor, args)
    deadline = time.monotonic() + REQUEST_WAIT_S
    while time.monotonic() < deadline:
        answer = cp.store.answer(request)
        if answer is not None:
            return answer
        time.sleep(0.05)
    raise StoreUnavailable(f"the leader did not carry out {kind} in {REQUEST_WAIT_S:g} s")


def answer_requests(cp: ControlPlane) -> None:
    for request in cp.store.open_requests():
        args = request.args or {}
        try:
            if request.kind == "cancel":
                result = cp.cancel(request.target, request.actor)
            elif request.kind == "cordon":
                cp.set_pool_cordoned(
                    request.target, args["cordoned"], args["reason"], request.actor
                )
                result = "ok"
            elif request.kind == "site":
                result = str(
                    cp.set_site_down(request.target, args["down"], args["reason"], request.actor)
                )
            elif request.kind == "tenants":
                cp.refresh_tenants()
                result = "ok"
            else:
                result = f"unknown request {request.kind!r}"
        except KeyError as exc:
            result = f"unknown: {exc}"
        except (StoreUnavailable, NotLeader):
            raise  # the request stays open; the next step (or leader) carries it out
        except Exception as exc:  # a bug: answer it, so one request blocks no other
            log.exception("request %s %s failed", request.kind, request.target)
            result = f"failed: {exc}"
        with cp.lock, cp._transaction() as writes:
            writes.requests_done.append((request.id, str(result)))
