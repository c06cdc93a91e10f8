"""`/v1/overview`: the dashboard's fleet view, as JSON (the same read the page renders)."""

from __future__ import annotations

from fastapi import APIRouter

from arkwright.service import read_model
from arkwright.service.api.deps import Control, Me
from arkwright.service.api.errors import ERRORS

router = APIRouter(prefix="/v1", tags=["overview"], responses=ERRORS)


@router.get("/overview")
def overview(me: Me, control: Control) -> dict:
    return read_model.overview(control, me).as_dict()
