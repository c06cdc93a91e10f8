"""How Arkwright reaches one site's Slurm controller: the `[sites.slurm]` table.

[sites.slurm]
ssh = "arkwright@login.isambard.ac.uk"   # omit to run sbatch/squeue on this machine
# or, where the site runs slurmrestd:     rest_url = "https://slurm.example:6820"
#                                         rest_user = "arkwright"
#                                         rest_token_file = "/run/secrets/slurm.jwt"
slurm_conf = "/etc/slurm/slurm.conf"     # SLURM_CONF for the commands
work_dir = "/projects/arkwright/runs"    # on the cluster's shared filesystem
partitions = { gh200 = "workq" }         # pool -> partition (default: the pool's name)
gres_types = { gh200 = "gh200" }         # pool -> GRES type: --gres=gpu:gh200:N
account = "{tenant}"                      # Slurm account; {tenant} is the programme
run_as = "owner"                          # (default) submit as the job's mapped account:
                                          # commands through `runuser -u ACCOUNT --` (the service
                                          # is root; munge vouches), REST with X-SLURM-USER-NAME
                                          # (a SlurmUser token); "service": one shared account
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arkwright.fleets.identity import IdentitySettings


class SlurmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ssh: str | None = None  # "user@login-node": commands run there over ssh (BatchMode)
    ssh_options: list[str] = []
    rest_url: str | None = None  # slurmrestd, instead of commands
    rest_user: str = "arkwright"
    rest_token_file: str | None = None  # read on every call; else the environment variable
    rest_token_env: str = "SLURM_JWT"
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
    # A job the controller no longer lists, of which accounting has no record yet and no
    # exit record was found, is asked about again for this long before it is called lost
    # and placed again: slurmdbd records a job's end after the controller, and placing a
    # job that in fact ended would run it twice.
    accounting_wait_s: Annotated[float, Field(ge=0)] = 300.0
    run_as: Literal["owner", "service"] = "owner"
    # Set by the loader from the site's [sites.identity] table (not written here).
    identity: IdentitySettings | None = Field(default=None, exclude=True)

    @field_validator("account")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(tenant="x")
            except (KeyError, IndexError, ValueError):
                raise ValueError(f"account {value!r} may use only the field {{tenant}}") from None
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> SlurmSettings:
        if self.rest_url and self.ssh:
            raise ValueError("give ssh or rest_url, not both: they are two ways to one controller")
        if self.rest_url and self.extra_args:
            raise ValueError("extra_args are sbatch options; they do not apply with rest_url")
        if self.run_as == "owner" and self.ssh:
            raise ValueError(
                "run_as = 'owner' (the default) needs the service (as root) to run Slurm's "
                "commands on this machine, or rest_url with a SlurmUser token, not ssh; "
                "with ssh, set run_as = 'service' to accept one shared account for all"
            )
        if self.rest_url and not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url {self.rest_url!r} should start http:// or https://")
        return self

    def partition_for(self, pool_short_name: str) -> str:
        return self.partitions.get(pool_short_name, pool_short_name)

    def gres_for(self, pool_short_name: str, gpus_per_node: int) -> str:
        kind = self.gres_types.get(pool_short_name)
        middle = f":{kind}" if kind else ""
        return f"{self.gres_name}{middle}:{gpus_per_node}"

    def account_for(self, tenant: str) -> str | None:
        return self.account.format(tenant=tenant) if self.account else None
