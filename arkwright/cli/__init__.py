"""The `arkwright` command.

`base` holds the root app and what every command shares; each module below registers its
commands on it. Importing them here, once, is the whole wiring: no module imports this
package back, so there is no import circle.
"""

from __future__ import annotations

from arkwright.cli import (  # noqa: F401  (registration)
    fleets,
    jobs,
    plan,
    sbatch,
    service,
    simulate,
    slurm_front,
)
from arkwright.cli.base import app


def main() -> None:  # pragma: no cover - console script entry point
    app()


__all__ = ["app", "main"]
