"""What Slurm would know about a job: its name, array ids, batch script and log patterns.

A submitted `script` runs as Slurm runs a batch script: written to the run directory
(the job's own, 0700) and executed directly, so the kernel honours its `#!` line (python,
`bash -l`, `bash -e`, `/usr/bin/env python3` ...), with the job's `command` as its
arguments and the variables a batch script reads (`SLURM_JOB_ID`, `SLURM_JOB_NAME`,
`SLURM_SUBMIT_DIR`, `SLURM_ARRAY_*` ...). sbatch refuses a script whose first line is not
`#!` and one with DOS line breaks; so does `check_script`, before anything is stored.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from arkwright.backends.log_patterns import LogTargets, PatternFields, targets

SCRIPT_NAME = "slurm_script"  # the name Slurm gives the copy it runs ($0's basename)


class BadScript(ValueError):
    """A batch script sbatch itself would refuse (the submitter's fault)."""


def check_script(text: str) -> str:
    """sbatch's own checks on a batch script; the text unchanged, or BadScript."""
    if not text.startswith("#!"):
        raise BadScript(
            "script: the first line must start with #! followed by the path to an "
            "interpreter (as sbatch requires), e.g. #!/bin/bash"
        )
    interpreter = text[2:].split("\n", 1)[0].strip()
    if not interpreter:
        raise BadScript("script: the #! line names no interpreter")
    if "\r\n" in text:
        line = text[: text.index("\r\n")].count("\n") + 1
        raise BadScript(
            f"script: DOS line breaks (\\r\\n) from line {line} on; sbatch refuses them "
            "(convert with dos2unix)"
        )
    return text


@dataclass(frozen=True)
class BatchSpec:
    """The job as sbatch describes it, from its stored spec."""

    name: str = ""
    script: str | None = None
    output: str | None = None
    error: str | None = None
    array_job_id: str | None = None
    array_task_id: int | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> BatchSpec:
        task = spec.get("array_task_id")
        return cls(
            name=str(spec.get("name") or ""),
            script=spec.get("script"),
            output=spec.get("output"),
            error=spec.get("error"),
            array_job_id=spec.get("array_job_id"),
            array_task_id=int(task) if task is not None else None,
        )

    def job_name(self, command: list[str]) -> str:
        """sbatch's default name: the script's (here "sbatch", as for a script sbatch read
        from its standard input); for a plain command, the program's base name."""
        if self.name:
            return self.name
        if self.script is not None or not command:
            return "sbatch"
        return os.path.basename(command[0]) or "sbatch"

    def fields(self, job_id: str, command: list[str], user: str, node: str | None) -> PatternFields:
        return PatternFields(
            job_id, self.job_name(command), user, self.array_job_id, self.array_task_id, node
        )

    def log_targets(
        self, job_id: str, command: list[str], user: str, node: str | None
    ) -> LogTargets:
        return targets(self.output, self.error, self.fields(job_id, command, user, node))


def short_hostname() -> str:
    """This machine as Slurm names a node (%N, SLURM_JOB_NODELIST): its short host name."""
    return socket.gethostname().split(".", 1)[0] or "localhost"


def slurm_environment(
    batch: BatchSpec,
    *,
    job_id: str,
    command: list[str],
    submit_dir: str,
    nodes: int,
    gpus_on_node: int,
    node_list: str | None,
) -> dict[str, str]:
    """The variables slurmd gives a batch script that Arkwright can state truthfully.
    `SLURM_NTASKS` is left out: the API has no task count, and a made-up one would be
    read by srun-less launchers as a world size."""
    env = {
        "SLURM_JOB_ID": job_id,
        "SLURM_JOBID": job_id,
        "SLURM_JOB_NAME": batch.job_name(command),
        "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NNODES": str(nodes),
        "SLURM_GPUS_ON_NODE": str(gpus_on_node),
        "SLURM_SUBMIT_DIR": submit_dir,
        "SLURM_NODEID": "0",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
    }
    if node_list:
        env["SLURM_JOB_NODELIST"] = node_list
        env["SLURM_NODELIST"] = node_list
    if batch.array_task_id is not None:
        env["SLURM_ARRAY_JOB_ID"] = batch.array_job_id or job_id
        env["SLURM_ARRAY_TASK_ID"] = str(batch.array_task_id)
    return env
