"""How Arkwright reaches one site's Slurm controller: the `[sites.slurm]` table.

[sites.slurm]
ssh = "arkwright@login.isambard.ac.uk"   # omit to run sbatch/squeue on this machine
slurm_conf = "/etc/slurm/slurm.conf"     # SLURM_CONF for the commands
work_dir = "/projects/arkwright/runs"    # on the cluster's shared filesystem
partitions = { gh200 = "workq" }         # pool -> partition (default: the pool's name)
gres_types = { gh200 = "gh200" }         # pool -> GRES type: --gres=gpu:gh200:N
account = "{tenant}"                      # Slurm account; {tenant} is the programme
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SlurmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ssh: str | None = None  # "user@login-node": commands run there over ssh (BatchMode)
    ssh_options: list[str] = []
    slurm_conf: str | None = None
    work_dir: str | None = None  # default: <service data dir>/slurm/<site>
    partitions: dict[str, str] = {}
    gres_name: str = "gpu"
    gres_types: dict[str, str] = {}
    account: str | None = "{tenant}"
    qos: str | None = None
    extra_args: list[str] = []  # e.g. ["--reservation=arkwright"]
    poll_interval_s: Annotated[float, Field(gt=0)] = 5.0
    # A job Slurm keeps PENDING this long is taken back and placed again (maybe elsewhere).
    pending_timeout_s: Annotated[float, Field(gt=0)] = 600.0
    command_timeout_s: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("account")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(tenant="x")
            except (KeyError, IndexError, ValueError):
                raise ValueError(f"account {value!r} may use only the field {{tenant}}") from None
        return value

    def partition_for(self, pool_short_name: str) -> str:
        return self.partitions.get(pool_short_name, pool_short_name)

    def gres_for(self, pool_short_name: str, gpus_per_node: int) -> str:
        kind = self.gres_types.get(pool_short_name)
        middle = f":{kind}" if kind else ""
        return f"{self.gres_name}{middle}:{gpus_per_node}"

    def account_for(self, tenant: str) -> str | None:
        return self.account.format(tenant=tenant) if self.account else None
