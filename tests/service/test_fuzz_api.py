"""Schemathesis against the live API's own /openapi.json: no input gives a server error,
and every status the API answers is one its OpenAPI document declares (issue 12).

The server runs for real (uvicorn on loopback) on the `tiny` fleet, whose sites are all
simulated: fuzzed commands are stored and "run" in scaled time, never executed here.
Bounded by a fixed number of examples, derandomised, so a run is repeatable.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import status_code_conformance  # noqa: E402

from arkwright.fleets import load_fleet  # noqa: E402
from arkwright.service.app import create_app  # noqa: E402
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control  # noqa: E402

EXAMPLES = 300  # across every operation, positive and negative cases together


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(tmp_path: Path):
    import uvicorn

    url = f"sqlite:///{tmp_path / 'arkwright.db'}"
    token = bootstrap_admin(url)
    config = ServiceConfig(load_fleet("tiny"), tmp_path / "data", url, tick_s=0.05)
    app = create_app(build_control(config))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise AssertionError("the server did not start")
    yield base, {"Authorization": f"Bearer {token}"}
    server.should_exit = True
    thread.join(timeout=30)


def test_no_input_gives_a_server_error(live_server):
    base, admin = live_server
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    strategy = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    seen: dict[int, int] = {}

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        response = case.call(base_url=base, headers=admin, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    fuzz()
    assert sum(seen.values()) >= EXAMPLES // 2, seen  # it really sent requests
    assert not any(status >= 500 for status in seen), seen
