"""Bodies built to hurt: deep or huge JSON is refused without exhausting memory or stalling others.

Each test runs its own buckets server (SQLite) so that its memory can be
measured: the peak resident size (``VmHWM``) may grow by at most
``MEMORY_BUDGET``, the hostile request must be answered within seconds, and
``/healthz`` must keep answering while it is being handled.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from fixtures.faults import ServerProcess
from fixtures.postgres import free_port
from workflow.buckets.bodies import MAX_VALUES

pytestmark = pytest.mark.integration

LIMIT = 16 * 1024 * 1024  # the server's default max_body_bytes
MEMORY_BUDGET_MIB = 256
ANSWER_WITHIN = 10.0
HEALTH_WITHIN = 2.0


@pytest.fixture
def server(tmp_path):
    process = ServerProcess(
        database=f"sqlite:///{tmp_path / 'hostile.sqlite3'}",
        log_path=tmp_path / "buckets.log",
        port=free_port(),
    ).start()
    yield process
    process.kill()


def peak_mib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) // 1024


def send_while_probing(server, path: str, body: bytes) -> tuple[httpx.Response | str, float, float]:
    """Send ``body``; meanwhile probe /healthz. (reply or error, seconds, slowest probe)."""
    done = threading.Event()
    slowest = 0.0

    def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{server.url}/healthz", timeout=30)
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.2)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.monotonic()
    try:
        reply: httpx.Response | str = httpx.post(
            f"{server.url}{path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError as error:
        reply = f"{type(error).__name__}: {error}"
    took = time.monotonic() - started
    done.set()
    prober.join()
    return reply, took, slowest


def check(server, path: str, body: bytes, figures) -> httpx.Response:
    figures["bad inputs tried"] += 1
    before = peak_mib(server.process.pid)
    reply, took, slowest = send_while_probing(server, path, body)
    grown = peak_mib(server.process.pid) - before
    print(f"\n{path}: {len(body)} bytes -> {reply} in {took:.1f} s; memory +{grown} MiB; "
          f"slowest /healthz {slowest:.1f} s")  # fmt: skip
    assert isinstance(reply, httpx.Response), reply
    assert 400 <= reply.status_code < 500, reply.text[:300]
    assert reply.json()["detail"]
    assert took < ANSWER_WITHIN, f"took {took:.1f} s to refuse"
    assert grown < MEMORY_BUDGET_MIB, f"the server's memory grew by {grown} MiB"
    assert slowest < HEALTH_WITHIN, f"/healthz waited {slowest:.1f} s meanwhile"
    return reply


@pytest.mark.parametrize("path", ["/work", "/view"])
def test_nesting_as_deep_as_the_size_limit_allows_is_refused_at_once(server, path, figures):
    depth = LIMIT // 2 - 8
    check(server, path, b"[" * depth + b"]" * depth, figures)


TINY_VALUES = {
    "empty arrays": b"[]",
    "empty strings": b'""',
    "small objects": b'{"a":1}',
}


@pytest.mark.parametrize("path", ["/work", "/view", "/work/withdraw"])
@pytest.mark.parametrize("value", list(TINY_VALUES), ids=list(TINY_VALUES))
def test_millions_of_tiny_values_under_the_size_limit_are_refused_cheaply(
    server, path, value, figures
):
    """5.6 million empty arrays fit in 16 MiB and would parse into about a GiB of objects."""
    item = TINY_VALUES[value]
    count = (LIMIT - 16) // (len(item) + 1)
    reply = check(server, path, b"[" + (item + b",") * count + item + b"]", figures)
    assert reply.status_code == 413
    assert reply.json()["detail"].startswith(f"body: holds more than {MAX_VALUES} JSON values")
