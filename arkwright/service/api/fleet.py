"""`/v1/sites` and `/v1/pools`: the fleet's state; admins cordon pools and mark sites down."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from arkwright.service import read_model
from arkwright.service.api.deps import Control, Db, Me, require
from arkwright.service.api.errors import ERRORS
from arkwright.service.schema import PoolPatch, SitePatch

router = APIRouter(prefix="/v1", tags=["fleet"], responses=ERRORS)
Name = Annotated[str, Path(max_length=128)]


@router.get("/sites")
def sites(me: Me, session: Db, control: Control) -> list[dict]:
    return read_model.sites(control, session)


@router.get("/pools")
def pools(me: Me, session: Db, control: Control) -> list[dict]:
    return read_model.pools(control, session)


@router.patch("/pools/{site}/{pool}")
def patch_pool(site: Name, pool: Name, body: PoolPatch, me: Me, control: Control) -> dict:
    """Cordon a pool (nothing new starts there) or lift the cordon."""
    require(me, "admin")
    name = f"{site}/{pool}"
    if name not in control.pool_index:
        raise HTTPException(404, f"no pool {name!r}")
    control.set_pool_cordoned(name, body.cordoned, body.reason, me.name)
    return {"pool": name, "cordoned": body.cordoned}


@router.patch("/sites/{site}")
def patch_site(site: Name, body: SitePatch, me: Me, control: Control) -> dict:
    """Mark a site down (its running work is re-queued) or up."""
    require(me, "admin")
    if site not in control.fleet.site_by_name:
        raise HTTPException(404, f"no site {site!r}")
    requeued = control.set_site_down(site, body.down, body.reason, me.name)
    return {"site": site, "down": body.down, "requeued": requeued}
