"""Slurm batch scripts read exactly as sbatch reads them, into Arkwright job requests.

`options` is the option table (argument kinds and what Arkwright does with each);
`getopt` is sbatch's option syntax; `directives` finds the #SBATCH lines; `request` is the
GPU and task arithmetic; `component` turns one heterogeneous component's options into its
part of the request; `reader` puts a command line and a script together.
"""

from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.reader import (
    CommandLine,
    Submission,
    parse_command_line,
    read_submission,
    wrap_script,
)

__all__ = [
    "CommandLine",
    "SbatchError",
    "Submission",
    "parse_command_line",
    "read_submission",
    "wrap_script",
]
