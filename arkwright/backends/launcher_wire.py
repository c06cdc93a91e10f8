"""The channel between the service and its privileged launcher: frames, and what may cross.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON, never pickle:
the service is the less trusted side (it parses tenants' HTTP), so nothing it sends may
be able to make the launcher, which keeps root, run code. A reply may carry open file
descriptors (SCM_RIGHTS) with its first byte: that is how a log opened by the launcher,
without following links, reaches the service's reader.

Every field that crosses is checked here, on the launcher's side, before it is used:
`Invalid` names the field. A RunRequest crosses as plain data (the job's fields, its pool
by index and name, the allocation, command, env and batch spec) and is rebuilt against
the fleet the launcher loaded itself, so a pool that does not exist names nothing.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
from typing import Any

from arkwright.backends.base import RunRequest
from arkwright.backends.batch import BatchSpec
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.job import Job
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData

MAX_FRAME = 8 << 20  # a request's command, env and script are each capped well below this
MAX_FDS = 2
_HEADER = struct.Struct(">I")
# The service's job ids (store.job_id_for: j-0000001) and the test suites' short names:
# letters, digits, '-' and '_' only, so an id can never climb out of its directory.
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_ATTEMPT = 1_000_000
MAX_TEXT = 1 << 20
STREAMS = ("stdout", "stderr")


class Invalid(ValueError):
    """A message the launcher will not act on (the service's fault, or an attacker's):
    answered with this reason, nothing done."""


class ChannelClosed(ConnectionError):
    """The other side closed the channel, or a frame did not arrive in time."""


# ------------------------------------------------------------------ frames


def _recv_exactly(sock: socket.socket, size: int, fds: list[int] | None = None) -> bytes:
    """`size` bytes; the first read also collects descriptors into `fds`."""
    chunks: list[bytes] = []
    left = size
    while left:
        try:
            if fds is not None and not chunks:
                data, got, _flags, _addr = socket.recv_fds(sock, left, MAX_FDS)
                fds.extend(got)
            else:
                data = sock.recv(min(left, 1 << 20))
        except TimeoutError:
            if chunks:  # cut off inside a frame: the stream is out of step for good
                raise ChannelClosed("a frame was cut short") from None
            raise
        if not data:
            raise ChannelClosed("the channel was closed")
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def send_frame(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps(message, separators=(",", ":")).encode()
    data = _HEADER.pack(len(body)) + body
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_frame(
    sock: socket.socket, fds: list[int] | None = None, body_timeout: float | None = None
) -> bytes:
    """One frame's body (unparsed). An oversized frame is read and thrown away, then
    refused: the stream stays in step with the sender. Once a header has come, the rest
    must come within `body_timeout` (a sender that stalls mid-frame is gone)."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size, fds))
    if body_timeout is not None:
        sock.settimeout(body_timeout)
    try:
        return _body(sock, size)
    except TimeoutError:
        raise ChannelClosed("a frame was cut short") from None


def _body(sock: socket.socket, size: int) -> bytes:
    if size > MAX_FRAME:
        left = size
        while left:
            left -= len(_recv_exactly(sock, min(left, 1 << 20)))
        raise Invalid(f"message: {size} bytes is over {MAX_FRAME}")
    return _recv_exactly(sock, size)


def parse(body: bytes) -> dict:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Invalid("message: not JSON") from None
    if not isinstance(message, dict):
        raise Invalid("message: not a JSON object")
    return message


# ------------------------------------------------------------------ field checks


def text(value: Any, name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name}: not a string")
    if len(value) > limit:
        raise Invalid(f"{name}: longer than {limit}")
    return value


def optional_text(value: Any, name: str) -> str | None:
    return None if value is None else text(value, name)


def integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{name}: not an integer in {low}..{high}")
    return value


def number(value: Any, name: str, low: float = 0.0, high: float = 1e12) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{name}: not a number")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"{name}: not a finite number in {low:g}..{high:g}")
    return value


def job_id(value: Any, name: str = "job_id") -> str:
    if not isinstance(value, str) or not JOB_ID.match(value):
        raise Invalid(f"{name}: not a job id (letters, digits, '-', '_')")
    return value


def attempt(value: Any, name: str = "attempt") -> int:
    return integer(value, name, 0, MAX_ATTEMPT)


def stream(value: Any) -> str:
    if value not in STREAMS:
        raise Invalid("stream: neither stdout nor stderr")
    return value


def mapping(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{name}: not an object")
    return value


def strings(value: Any, name: str, limit: int = 4096) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise Invalid(f"{name}: not a list of at most {limit} strings")
    return [text(item, f"{name}[{i}]") for i, item in enumerate(value)]


def string_set(value: Any, name: str) -> frozenset[str] | None:
    return None if value is None else frozenset(strings(value, name))


def pool_of(fleet: Fleet, index: Any, name: Any, field: str = "pool") -> Pool:
    """The launcher's own Pool for (index, name): both must name the same pool of a local
    site, or the request names nothing the launcher runs."""
    index = integer(index, f"{field}.index", 0, len(fleet.pools) - 1 if fleet.pools else -1)
    pool = fleet.pools[index]
    if pool.name != name or pool.site.backend != "local":
        raise Invalid(f"{field}: {name!r} is not a local pool of this fleet")
    return pool


def allocation(value: Any, pool: Pool, name: str = "allocation") -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not 0 < len(value) <= pool.nodes:
        raise Invalid(f"{name}: not a list of 1..{pool.nodes} [node, gpus] pairs")
    pairs = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise Invalid(f"{name}[{i}]: not a [node, gpus] pair")
        node = integer(pair[0], f"{name}[{i}].node", 0, pool.nodes - 1)
        gpus = integer(pair[1], f"{name}[{i}].gpus", 1, pool.gpus_per_node)
        pairs.append((node, gpus))
    return tuple(pairs)


# ------------------------------------------------------------------ RunRequest


def request_to_wire(request: RunRequest) -> dict:
    """What the launcher needs of a start, as plain data (the service's side)."""
    job, batch, policy = request.job, request.batch, request.job.data_policy
    return {
        "job": {
            "job_id": job.job_id,
            "tenant": job.tenant,
            "gpus": job.gpus,
            "duration_s": job.duration_s,
            "submit_time": job.submit_time,
            "time_limit_s": job.time_limit_s,
            "speed": job.speed,
            "gpu_types": sorted(job.gpu_types) if job.gpu_types is not None else None,
            "sites": sorted(job.sites) if job.sites is not None else None,
            "pools": sorted(job.pools) if job.pools is not None else None,
            "residency": sorted(policy.residency) if policy.residency is not None else None,
            "classification": int(policy.classification),
            "personal_data": policy.personal_data.value,
        },
        "pool": {"index": request.pool.index, "name": request.pool.name},
        "allocation": [list(pair) for pair in request.allocation],
        "attempt": request.attempt,
        "command": list(request.command),
        "env": dict(request.env),
        "runtime_s": request.runtime_s,
        "owner": request.owner,
        "batch": {
            "name": batch.name,
            "script": batch.script,
            "output": batch.output,
            "error": batch.error,
            "array_job_id": batch.array_job_id,
            "array_task_id": batch.array_task_id,
        },
    }


def request_from_wire(fleet: Fleet, data: Any) -> RunRequest:
    """The RunRequest rebuilt against the launcher's own fleet, every field checked."""
    data = mapping(data, "request")
    raw = mapping(data.get("job"), "job")
    # Any programme name: the fleet runs work of programmes it does not list, at weight 1.
    tenant = text(raw.get("tenant"), "job.tenant", 256)
    try:
        policy = DataPolicy(
            residency=string_set(raw.get("residency"), "job.residency"),
            classification=Classification(
                integer(raw.get("classification"), "job.classification", 0, 3)
            ),
            personal_data=PersonalData(text(raw.get("personal_data"), "job.personal_data", 16)),
        )
    except ValueError as exc:
        raise Invalid(f"job: {exc}") from None
    limit = raw.get("time_limit_s")
    job = Job(
        job_id=job_id(raw.get("job_id"), "job.job_id"),
        tenant=tenant,
        gpus=integer(raw.get("gpus"), "job.gpus", 1, 1 << 20),
        duration_s=number(raw.get("duration_s"), "job.duration_s"),
        submit_time=number(raw.get("submit_time"), "job.submit_time"),
        time_limit_s=None if limit is None else number(limit, "job.time_limit_s"),
        data_policy=policy,
        gpu_types=string_set(raw.get("gpu_types"), "job.gpu_types"),
        sites=string_set(raw.get("sites"), "job.sites"),
        pools=string_set(raw.get("pools"), "job.pools"),
    )
    job.speed = number(raw.get("speed"), "job.speed", 1e-6, 1e6)
    where = mapping(data.get("pool"), "pool")
    pool = pool_of(fleet, where.get("index"), where.get("name"))
    env = mapping(data.get("env"), "env")
    if len(env) > 4096:
        raise Invalid("env: more than 4096 variables")
    raw_batch = mapping(data.get("batch"), "batch")
    task = raw_batch.get("array_task_id")
    batch = BatchSpec(
        name=text(raw_batch.get("name"), "batch.name", 1024),
        script=optional_text(raw_batch.get("script"), "batch.script"),
        output=optional_text(raw_batch.get("output"), "batch.output"),
        error=optional_text(raw_batch.get("error"), "batch.error"),
        array_job_id=optional_text(raw_batch.get("array_job_id"), "batch.array_job_id"),
        array_task_id=None if task is None else integer(task, "batch.array_task_id", 0, 1 << 31),
    )
    return RunRequest(
        job=job,
        pool=pool,
        allocation=allocation(data.get("allocation"), pool),
        attempt=attempt(data.get("attempt")),
        command=strings(data.get("command"), "command"),
        env={text(k, "env name", 4096): text(v, f"env.{k}") for k, v in env.items()},
        runtime_s=number(data.get("runtime_s"), "runtime_s"),
        owner=text(data.get("owner"), "owner", 256),
        batch=batch,
    )
