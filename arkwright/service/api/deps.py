"""What routes depend on: the control plane, the caller, a database session, a role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from arkwright.service.auth import Principal
from arkwright.service.control import ControlPlane
from arkwright.service.schema import Limits
from arkwright.service.views import Db, Me

__all__ = ["Control", "Db", "Me", "limits", "require"]


async def _control(request: Request) -> ControlPlane:
    return request.app.state.control


Control = Annotated[ControlPlane, Depends(_control)]


async def limits(request: Request) -> Limits:
    return request.app.state.limits


def require(me: Principal, *roles: str) -> None:
    if me.role not in roles:
        raise HTTPException(403, f"needs role {' or '.join(roles)}; you are {me.role}")
