"""Where a job's logs go: sbatch's --output/--error file name patterns, and reading them back.

Expansion follows Slurm's own (`expand_stdio_fields` in Slurm's src/common): `%%` is a
`%`; `%j` the job id (`%J` too: a batch job's step is the batch step); `%x` the job name;
`%A` the array's id (the job id outside an array); `%a` the array task id (Slurm's
NO_VAL, 4294967294, outside an array, as Slurm prints it); `%b` the task id modulo 10;
`%u` the user; `%N` the first node's short host name; `%n` and `%t` are 0 and `%s` is
`batch` (a batch script is one task on its first node); a number between `%` and the
letter zero-pads a numeric value (at most 10 wide; ignored for names); an unknown `%c`
stays as it is; and a pattern with a backslash anywhere is not expanded at all (the
backslashes are dropped). The job id is Arkwright's (`j-0000012`), the id `arkwright
squeue` and `arkwright logs` know, on every site.

Where Arkwright differs from sbatch, and why: a path is always relative to the job's run
directory (a fresh directory per attempt, the job's own); an absolute path is refused
(except `/dev/null`) and so is any `..` component, before and after expansion. The site
is the scheduler's choice, not the submitter's, so an absolute path names a place on a
machine the user never chose; and the API serves logs from the run directory only. Missing
directories in the pattern (`logs/%x-%j.out`) are made, by the job's own account, since a
fresh run directory has none of the submitter's.

Reading back (for `GET /v1/jobs/{id}/logs`) never follows a link: each component is
opened below the run directory with O_NOFOLLOW, and only a regular file owned by the
job's account is read, so a job that swaps its log for a link to the service's database
or another tenant's file gets nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

DEV_NULL = "/dev/null"
NO_VAL = 0xFFFFFFFE  # what Slurm prints for %a outside an array
MAX_PADDING = 10
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255


class BadLogPattern(ValueError):
    """An --output/--error pattern that would write outside the run directory (or that no
    file system could hold): the submitter's fault, named with the field."""


class FirstNode:
    """Stands for %N where the first node is known only once the job runs (Slurm)."""

    def __repr__(self) -> str:
        return "FIRST_NODE"


FIRST_NODE = FirstNode()
Segment = str | FirstNode


@dataclass(frozen=True)
class PatternFields:
    job_id: str
    job_name: str
    user: str
    array_job_id: str | None = None
    array_task_id: int | None = None
    node: str | None = None  # None: left as FIRST_NODE, for the site to fill in


_NUMERIC = frozenset("Aajb")
_WILDCARDS = frozenset("AabJjNnstux")


def _value(letter: str, fields: PatternFields) -> Segment:
    task = fields.array_task_id if fields.array_task_id is not None else NO_VAL
    if letter == "A":
        return fields.array_job_id or fields.job_id
    if letter in "jJ":
        return fields.job_id
    if letter == "a":
        return str(task)
    if letter == "b":
        return str(task % 10)
    if letter == "N":
        return fields.node if fields.node is not None else FIRST_NODE
    if letter in "nt":
        return "0"
    if letter == "s":
        return "batch"
    if letter == "u":
        return fields.user
    return fields.job_name  # x


def expand(pattern: str, fields: PatternFields) -> list[Segment]:
    """The pattern's file name, as text with FIRST_NODE where %N could not be filled."""
    if "\\" in pattern:  # Slurm: a backslash anywhere turns expansion off
        return [pattern.replace("\\", "")]
    out: list[Segment] = []
    text: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "%":
            text.append(char)
            i += 1
            continue
        if i + 1 == len(pattern):
            break  # Slurm drops a lone % at the end
        j = i + 1
        while j < len(pattern) and pattern[j].isdigit():
            j += 1
        digits, letter = pattern[i + 1 : j], pattern[j] if j < len(pattern) else ""
        if not digits and letter == "%":
            text.append("%")
        elif digits and letter not in _WILDCARDS:
            # Slurm's quirk: "%12q" keeps the last digit and drops the rest, and the %.
            text.append(digits[-1])
            j -= 1
        elif letter not in _WILDCARDS:
            text.append("%" + letter)
        else:
            value = _value(letter, fields)
            if isinstance(value, FirstNode):
                out += ["".join(text), value]
                text = []
            else:
                width = min(int(digits), MAX_PADDING) if digits else 0
                if letter in _NUMERIC and value.isdigit():
                    value = value.zfill(width)
                text.append(value)
        i = j + 1
    out.append("".join(text))
    return [part for part in out if part != ""]


def render(segments: list[Segment], node: str) -> str:
    return "".join(node if isinstance(part, FirstNode) else part for part in segments)


def confined(path: str, field: str) -> str:
    """`path` (expanded) as a clean path below the run directory, or BadLogPattern."""
    if path == DEV_NULL:
        return path
    if not path:
        raise BadLogPattern(f"{field}: the file name is empty")
    if path.startswith("/"):
        raise BadLogPattern(
            f"{field}: {path[:200]!r} is an absolute path; Arkwright keeps logs in the job's "
            "run directory (the site is chosen by the scheduler), so give a path relative "
            "to it, e.g. 'logs/%x-%j.out' (or /dev/null)"
        )
    if path.endswith("/"):
        raise BadLogPattern(f"{field}: {path[:200]!r} names a directory, not a file")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadLogPattern(f"{field}: {path[:200]!r} climbs out of the run directory ('..')")
    if not parts:
        raise BadLogPattern(f"{field}: {path[:200]!r} names the run directory, not a file")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise BadLogPattern(f"{field}: a file name longer than {MAX_NAME_BYTES} bytes")
    clean = "/".join(parts)
    if len(clean.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise BadLogPattern(f"{field}: a path longer than {MAX_PATH_BYTES} bytes")
    return clean


def check_pattern(pattern: str, field: str, job_name: str = "") -> str:
    """What the API checks at submission: the pattern, expanded with stand-in ids and the
    job's own name (a name is the tenant's too: `%x` with a name of '..' climbs out), is
    a file below the run directory. Returns the pattern unchanged."""
    trial = PatternFields("j-1", job_name or "sbatch", "user", None, None, "node")
    confined(render(expand(pattern, trial), "node"), field)
    return pattern


@dataclass(frozen=True)
class LogTargets:
    """Where stdout and stderr go, relative to the run directory (None: the backend's
    default place). `stderr == stdout` when only --output was given (sbatch's rule)."""

    stdout: list[Segment] | None = None
    stderr: list[Segment] | None = None

    @property
    def any(self) -> bool:
        return self.stdout is not None or self.stderr is not None


def targets(output: str | None, error: str | None, fields: PatternFields) -> LogTargets:
    """Expand and confine both patterns (BadLogPattern names the field)."""

    def one(pattern: str | None, field: str) -> list[Segment] | None:
        if pattern is None:
            return None
        segments = expand(pattern, fields)
        confined(render(segments, "node"), field)  # a node name holds no '/'
        return segments

    out, err = one(output, "output"), one(error, "error")
    if out is not None and err is None:
        err = out  # sbatch: without --error, stderr goes where stdout goes
    return LogTargets(out, err)


def open_confined(root: str, relative: str, owner_uid: int | None = None) -> BinaryIO | None:
    """`root/relative` opened for reading without following any link below `root`, if it
    is a regular file (owned by `owner_uid` when given); None otherwise."""
    parts = confined(relative, "log").split("/")
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        dir_fd = os.open(root, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = inner
        # O_NONBLOCK: a FIFO planted as the log must not hang the API's reader.
        fd = os.open(parts[-1], flags | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (owner_uid is not None and info.st_uid != owner_uid):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")
