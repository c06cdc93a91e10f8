"""The one error the reader raises: what sbatch would refuse, or what Arkwright cannot do."""

from __future__ import annotations


class SbatchError(ValueError):
    """A script or command line refused, naming where: "line 7", "command line", an
    environment variable, or nothing for the script as a whole. Nothing was submitted;
    the user fixes the named line."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where
