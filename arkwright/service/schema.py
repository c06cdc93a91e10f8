"""What the API takes and gives: Pydantic models at the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import PriorityClass
from arkwright.core.policy_data import Classification, PersonalData
from arkwright.timefmt import parse_duration

Role = Literal["admin", "tenant-admin", "user"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobSubmit(_In):
    name: Annotated[str, Field(max_length=128)] = ""
    tenant: str | None = None
    gpus: Annotated[int, Field(gt=0, le=1_000_000)]
    gpu_type: list[str] | None = None
    time: str | float = "1h"
    expected_runtime: str | float | None = None
    job_type: Annotated[str, Field(max_length=64)] = "default"
    residency: list[str] | None = None
    classification: str = "OFFICIAL"
    personal_data: str = "none"
    priority: str | int = "normal"
    preemptible: bool = True
    checkpoint_interval: str | float | None = None
    deadline: datetime | None = None
    sites: list[str] | None = None
    command: list[str] = []
    env: dict[str, str] = {}

    @field_validator("gpu_type", mode="before")
    @classmethod
    def _gpu_models(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.replace(",", "|").split("|") if v.strip()]
        if isinstance(value, list):
            for model in value:
                if model not in GPU_CATALOGUE:
                    raise ValueError(
                        f"unknown GPU model {model!r} (known: {', '.join(GPU_CATALOGUE)})"
                    )
        return value

    @field_validator("residency", mode="before")
    @classmethod
    def _residency(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().lower() in ("", "any", "*"):
                return None
            value = [v.strip().upper() for v in value.replace(",", "|").split("|") if v.strip()]
        return value

    @field_validator("time", "expected_runtime", "checkpoint_interval")
    @classmethod
    def _durations(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("classification")
    @classmethod
    def _classification(cls, value: str) -> str:
        return Classification.parse(value).label

    @field_validator("personal_data")
    @classmethod
    def _personal(cls, value: str) -> str:
        return PersonalData.parse(value).value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | int) -> str:
        return PriorityClass.parse(value).name.lower()


class JobOut(BaseModel):
    id: str
    name: str
    tenant: str
    user: str
    state: str
    reason: str
    gpus: int
    gpu_type: list[str] | None
    time_limit_s: float
    priority: str
    residency: list[str] | None
    classification: str
    personal_data: str
    pool: str | None
    site: str | None
    attempts: int
    exit_code: int | None
    slurm_job_id: str | None = None  # the run's id in its site's Slurm, where it has one
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    command: list[str]


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class EventOut(BaseModel):
    at: datetime
    kind: str
    detail: str


class TenantIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    weight: Annotated[float, Field(gt=0)] = 1.0
    description: str = ""
    gpu_hours_allocation: Annotated[float, Field(ge=0)] | None = None


class UserIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")]
    tenant: str | None = None
    role: Role = "user"


class TokenOut(BaseModel):
    token: str  # shown once; only its hash is stored
    prefix: str
    user: str


class PoolPatch(_In):
    cordoned: bool
    reason: str = ""


class SitePatch(_In):
    down: bool
    reason: str = ""
