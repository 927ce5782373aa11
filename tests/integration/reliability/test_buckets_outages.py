"""buckets and its database failing under running Works: the operator waits, says so, catches up.

One sequence against a buckets server on a PostgreSQL of the test's own:
Works run; PostgreSQL restarts under buckets (every session cut); then
buckets is SIGKILLed and stays away for a minute while some Works finish and
new ones are applied. Meanwhile the operator must show ``BackendSynced=False``,
start no Job for a Work it could not record, and retry with backoff rather
than hammer. When buckets returns, everything catches up: each Work ends as
it should, once per attempt, and buckets agrees with the Work resources.

``WORKFLOW_RELIABILITY_OUTAGE_SECONDS`` (default 60) sets the outage.
"""

from __future__ import annotations

import os
import time

import pytest
from kubernetes import client
from reliability_helpers import (
    KINDS,
    Kind,
    Planned,
    audit,
    condition,
    is_settled,
    work_spec,
)

from fixtures.faults import (
    ServerProcess,
    create_database,
    restart_postgres,
    start_postgres,
    stop_postgres,
)
from fixtures.postgres import free_port

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.postgres]

OUTAGE = float(os.environ.get("WORKFLOW_RELIABILITY_OUTAGE_SECONDS", "60"))
PIPELINE = "outages"
BACKOFF_MAX = 16
#: Finishes while buckets is away: its results, too large for the termination message, cannot
#: be recorded, so the attempt fails (ResultsNotRecorded) and the retry records them.
BIG_RETRIED = Kind("big", retries=1, phase="success", attempts=2)


def test_works_survive_postgres_restarting_and_buckets_killed_for_a_minute(
    cluster, operator_process, works, kube, namespace, tmp_path, figures
):
    postgres = start_postgres()
    server = ServerProcess(
        database=create_database(postgres, "buckets"),
        log_path=tmp_path / "buckets.log",
        port=free_port(),
    ).start()
    try:
        operator = operator_process(
            server.url,
            **server.operator_env,
            WORKFLOW_OPERATOR_SYNC_BACKOFF_MAX_SECONDS=str(BACKOFF_MAX),
        )
        planned: list[Planned] = []

        def apply(name: str, kind: str | Kind, seconds: float = 2.0) -> None:
            marker, chosen = tmp_path / name, KINDS[kind] if isinstance(kind, str) else kind
            works.apply(name, work_spec(PIPELINE, chosen, marker, seconds=seconds))
            planned.append(Planned(name, chosen, marker))

        for name, kind, seconds in [
            ("long-0", "slow", 25), ("long-1", "slow", 15), ("long-big", BIG_RETRIED, 20),
            ("flaky", "flaky", 2), ("quick", "ok", 2), ("function", "function", 2),
        ]:  # fmt: skip
            apply(name, kind, seconds)
        for name in ("long-0", "long-1", "long-big"):
            works.wait_phase(name, "running", timeout=120)

        restart_postgres(postgres, downtime=2)
        figures["faults injected"] += 1

        server.kill()
        figures["faults injected"] += 1
        down_at = time.monotonic()
        log_before = len(operator.log())
        apply("during-0", "ok")
        apply("during-1", "function")
        unsynced: set[str] = set()
        while time.monotonic() - down_at < OUTAGE:
            for item in planned:
                found = condition(works.get(item.name), "BackendSynced")
                if found is not None and found["status"] == "False":
                    unsynced.add(item.name)
            assert works.jobs("during-0") == [] and works.jobs("during-1") == [], (
                "a Job started for a Work buckets has not recorded"
            )
            time.sleep(1)
        for name in ("during-0", "during-1"):
            status = works.get(name).get("status") or {}
            assert status.get("phase", "created") == "created", status
            assert "waiting for buckets" in (status.get("message") or ""), status
        retries = operator.log()[log_before:].count("buckets update failed")

        server.start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not all(
            is_settled(works.get(item.name)) for item in planned
        ):
            time.sleep(1)
        result = audit(
            planned, works, client.CoreV1Api(kube), namespace, server.url, PIPELINE,
            server.headers,
        )  # fmt: skip
        result.record(figures)
        print(
            f"\nbuckets down {OUTAGE:.0f} s: BackendSynced=False on {sorted(unsynced)}; "
            f"{retries} failed updates retried with backoff (at most {BACKOFF_MAX} s apart)"
        )
        assert not result.problems(), "\n".join(result.problems()) + operator.log()[-3000:]
        first = works.get("long-big")["status"]["history"][0]
        assert first["reason"] == "ResultsNotRecorded", first
        assert {"during-0", "during-1", "long-1"} <= unsynced
        # Backoff, not a busy loop: with waits doubling up to BACKOFF_MAX s, each Work that
        # needed buckets retried a handful of times a minute, not hundreds.
        assert 1 <= retries <= len(unsynced) * (OUTAGE / 4 + 4), retries
    finally:
        server.stop()
        stop_postgres(postgres)
