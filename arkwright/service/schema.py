"""What the API takes and gives: Pydantic models at the HTTP boundary.

Every submission is bounded here, before anything stores or runs it (a hostile tenant
chooses these bytes): command and environment sizes stay well inside what `execve`
accepts, environment names are ones a shell can export, no string carries a NUL (which
neither PostgreSQL nor `execve` can take), and durations are finite and below a maximum.
The limits are a `Limits` the app passes in the validation context, so a deployment can
change them; the defaults hold without one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from arkwright.backends.batch import check_script
from arkwright.backends.log_patterns import check_pattern
from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import PriorityClass
from arkwright.core.policy_data import Classification, PersonalData
from arkwright.timefmt import format_duration, is_unlimited, parse_duration

Role = Literal["admin", "tenant-admin", "user"]

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Linux refuses any one argument over 128 KiB and the
    whole of argv + environ over ~2 MiB; these stay far inside both."""

    max_body_bytes: int = 1 << 20
    max_command_bytes: int = 64 << 10  # all arguments together, UTF-8
    max_command_args: int = 4096
    max_env_bytes: int = 64 << 10  # every NAME=value together, UTF-8
    max_duration_s: float = 366 * 86400.0  # time limits, expected run times, checkpoints


DEFAULT_LIMITS = Limits()


def limits_of(info: ValidationInfo) -> Limits:
    context = info.context or {}
    return context.get("limits", DEFAULT_LIMITS)


def _no_nul(value: Any, where: str) -> None:
    """Reject a NUL anywhere in a (nested) value: PostgreSQL text and execve can't hold one."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} must not contain a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, where)
            _no_nul(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_nul(item, where)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strings_without_nul(cls, value: Any, info: ValidationInfo) -> Any:
        _no_nul(value, info.field_name or "value")
        return value


# A duration as people write it ("2h", "1-00:00:00") or a number of seconds. Strict
# members: JSON `true` is not one second, and "1" (a string) is Slurm's one minute.
DurationIn = Annotated[StrictStr, Field(max_length=32)] | StrictInt | StrictFloat
ShortName = Annotated[str, Field(max_length=64)]
PoolName = Annotated[str, Field(max_length=129)]
SlurmName = Annotated[StrictStr, Field(min_length=1, max_length=256)]


def checked_duration(value: str | float, limits: Limits) -> str | float:
    """`value` unchanged if it is a finite, positive duration no longer than the maximum."""
    try:
        seconds = parse_duration(value)
    except OverflowError:  # a 400-digit integer has no float
        raise ValueError("duration out of range") from None
    if not math.isfinite(seconds) or seconds > limits.max_duration_s:
        raise ValueError(
            f"duration longer than the maximum of {format_duration(limits.max_duration_s)}"
        )
    return value


class JobSubmit(_In):
    name: Annotated[str, Field(max_length=128)] = ""
    tenant: ShortName | None = None
    gpus: Annotated[StrictInt, Field(gt=0, le=1_000_000)]
    gpu_type: Annotated[list[ShortName], Field(max_length=64)] | None = None
    # None: the pool's default time limit (the fleet's `default_time`, as Slurm's
    # partition DefaultTime); "UNLIMITED", "INFINITE" or 0: the site's maximum.
    time: DurationIn | None = None
    expected_runtime: DurationIn | None = None
    job_type: ShortName = "default"
    residency: Annotated[list[ShortName], Field(max_length=64)] | None = None
    classification: ShortName = "OFFICIAL"
    personal_data: ShortName = "none"
    priority: ShortName | Annotated[StrictInt, Field(ge=0, le=3)] = "normal"
    preemptible: bool = True
    checkpoint_interval: DurationIn | None = None
    deadline: datetime | None = None
    sites: Annotated[list[ShortName], Field(max_length=256)] | None = None
    # Pools ("site/pool") the job may use; None: any eligible pool.
    pools: Annotated[list[PoolName], Field(max_length=256)] | None = None
    # The node shape: exactly `nodes` nodes with gpus / nodes GPUs on each (as sbatch's
    # --nodes with --gpus-per-node). None: Arkwright chooses (one node when the job fits
    # on one, else whole nodes).
    nodes: Annotated[StrictInt, Field(gt=0, le=100_000)] | None = None
    # Slurm-world names a site's users already write; the fleet's `[slurm_names]` maps
    # them to pools, programmes, GPU models and priorities (`arkwright.fleets.slurm_names`).
    partition: SlurmName | None = None
    account: SlurmName | None = None
    qos: SlurmName | None = None
    constraint: SlurmName | None = None
    # The TYPE of --gres=gpu:TYPE:N (or --gpus=TYPE:N) as written: a site's spelling or
    # a bare vendor ("a100_80gb", "nvidia"), which only the fleet's names can resolve.
    gres_type: SlurmName | None = None
    # Slurm's --dependency syntax over Arkwright job ids ("afterok:j-0000012:j-0000013",
    # "afterany:12?afternotok:14", "singleton"); --kill-on-invalid-dep.
    dependency: Annotated[StrictStr, Field(max_length=8192)] | None = None
    kill_on_invalid_dep: bool = False
    # Slurm's --array spec ("0-15:4", "1,3,5%2"): one job per task, made together.
    array: Annotated[StrictStr, Field(max_length=4096)] | None = None
    # A batch script run as Slurm runs one: written to the run directory and executed
    # (its own #! interpreter), with `command` as its arguments.
    script: Annotated[StrictStr, Field(max_length=1 << 20)] | None = None
    # Where the logs go, as sbatch's --output/--error patterns (%j %x %A %a %u %N %%),
    # relative to the run directory. None: stdout.log / stderr.log there.
    output: Annotated[StrictStr, Field(max_length=1024)] | None = None
    error: Annotated[StrictStr, Field(max_length=1024)] | None = None
    command: list[str] = []
    env: dict[str, str] = {}

    @model_validator(mode="after")
    def _shape(self) -> JobSubmit:
        if self.nodes is not None and self.gpus % self.nodes:
            raise ValueError(f"nodes: {self.gpus} GPUs do not split evenly over {self.nodes} nodes")
        return self

    @field_validator("gpu_type", mode="before")
    @classmethod
    def _gpu_models(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.replace(",", "|").split("|") if v.strip()]
        if isinstance(value, list):
            for model in value:
                if not isinstance(model, str):
                    raise ValueError("GPU models are names (strings)")
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
    def _durations(cls, value: str | float | None, info: ValidationInfo) -> str | float | None:
        if value is None or (info.field_name == "time" and is_unlimited(value)):
            return value
        return None if value is None else checked_duration(value, limits_of(info))

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str], info: ValidationInfo) -> list[str]:
        limits = limits_of(info)
        if len(value) > limits.max_command_args:
            raise ValueError(f"at most {limits.max_command_args} arguments")
        size = sum(len(arg.encode()) + 1 for arg in value)
        if size > limits.max_command_bytes:
            raise ValueError(f"{size} bytes; at most {limits.max_command_bytes} in all")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        limits = limits_of(info)
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name[:64]!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        size = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in value.items())
        if size > limits.max_env_bytes:
            raise ValueError(f"{size} bytes; at most {limits.max_env_bytes} in all")
        return value

    @field_validator("script")
    @classmethod
    def _script(cls, value: str | None) -> str | None:  # sbatch's own refusals
        return None if value is None else check_script(value)

    @field_validator("output", "error")
    @classmethod
    def _log_pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Never outside the job's run directory, the name (`%x`) included.
        name = info.data.get("name") or ""
        return None if value is None else check_pattern(value, info.field_name or "", name)

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
    def _priority(cls, value: str | int) -> str:  # "high", "2" or 2
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
    nodes: int | None = None  # the node shape asked for; None: Arkwright's choice
    dependency: str | None = None  # as submitted, ids resolved
    array_job_id: str | None = None  # the array's id (its first task's job id)
    array_task_id: int | None = None
    expected_start: datetime | None = None  # the core's estimate while pending, if any
    warnings: list[str] = []  # what the submission's Slurm names or defaults changed
    allocated_nodes: list[int] | None = None  # the pool's node numbers its run holds
    partition: str | None = None  # the partition asked for, as written (a Slurm name)
    output: str | None = None  # the --output / --error patterns as submitted
    error: str | None = None
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
    weight: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    description: Annotated[str, Field(max_length=1024)] = ""
    gpu_hours_allocation: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] | None = None


class UserIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")]
    tenant: ShortName | None = None
    role: Role = "user"


class TokenOut(BaseModel):
    token: str  # shown once; only its hash is stored
    prefix: str
    user: str
    expires_at: datetime | None = None  # None: until revoked


class PoolPatch(_In):
    cordoned: bool
    reason: Annotated[str, Field(max_length=1024)] = ""


class SitePatch(_In):
    down: bool
    reason: Annotated[str, Field(max_length=1024)] = ""
