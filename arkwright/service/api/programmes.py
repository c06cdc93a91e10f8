"""`/v1/tenants` and `/v1/usage`: programmes, their weights, and what they have used."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from arkwright.service import read_model
from arkwright.service.api.deps import Control, Db, Me, require
from arkwright.service.api.errors import ERRORS
from arkwright.service.db import AuditRow, TenantRow
from arkwright.service.schema import TenantIn

router = APIRouter(prefix="/v1", tags=["programmes"], responses=ERRORS)


@router.get("/tenants")
def tenants(me: Me, session: Db) -> list[dict]:
    rows = session.scalars(select(TenantRow).order_by(TenantRow.name))
    return [
        {
            "name": t.name,
            "weight": t.weight,
            "description": t.description,
            "gpu_hours_allocation": t.gpu_hours_allocation,
        }
        for t in rows
        if me.may_see_tenant(t.name)
    ]


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, me: Me, session: Db, control: Control) -> dict:
    require(me, "admin")
    if session.get(TenantRow, body.name) is not None:
        raise HTTPException(409, f"tenant {body.name!r} exists")
    session.add(TenantRow(**body.model_dump()))
    session.add(AuditRow(actor=me.name, action="create-tenant", target=body.name))
    session.commit()
    control.refresh_tenants()
    return body.model_dump()


@router.get("/usage")
def usage(me: Me, session: Db) -> dict:
    """GPU-hours, cost and energy by programme and by site."""
    by_tenant, by_site = read_model.usage(session, me)
    return {"by_tenant": by_tenant, "by_site": by_site, "as_of": datetime.now(UTC).isoformat()}
