"""Shared parts of the reliability tests: Works that count their own runs, and the final audit.

Every Work these tests make leaves a trace of each run: its command (or
function) appends the attempt number it was given to a marker file of its
own before doing anything else. After the faults, ``audit`` compares, for
each Work, the Work resource, its Jobs and Pods, the marker file and the
buckets record, and sorts every difference into *lost* (a Work that did not
end as it should, or that buckets does not know) or *duplicated* (an attempt
that ran twice, a second Job for an attempt, a second buckets record).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from workflow.controller.jobs import job_name

HERE = Path(__file__).resolve().parent

#: Appends the attempt number to the marker file, then behaves as its mode says.
#: argv: marker mode [seconds]. Modes: ok; bad (exit 3); flaky (fails its first run);
#: slow (sleeps); big (returns results too large for the resource, after sleeping on its
#: first run, after waiting for buckets to answer on later runs);
#: hang-first (its first run writes its pid to ``<marker>.pid`` and sleeps; later runs
#: succeed at once).
RUN_SCRIPT = """
import json, os, sys, time
marker, mode = sys.argv[1], sys.argv[2]
attempt = json.loads(os.environ["WORKFLOW_WORK"])["attempt"]
with open(marker, "a") as f:
    f.write(f"{attempt}\\n")
runs = len(open(marker).read().split())
if mode == "hang-first" and runs == 1:
    open(marker + ".pid", "w").write(str(os.getpid()))
    time.sleep(float(sys.argv[3]))
if mode == "bad":
    sys.exit(3)
if mode == "flaky" and runs == 1:
    sys.exit(1)
if mode == "slow" or (mode == "big" and runs == 1):
    time.sleep(float(sys.argv[3]))
if mode == "big" and runs > 1:  # a retry: wait until buckets answers, up to 3 minutes
    import urllib.request
    for _ in range(360):
        try:
            urllib.request.urlopen(os.environ["WORKFLOW_HTTP_BASEURL"] + "/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
if mode == "big":
    json.dump({"results": {"blob": "x" * 100000, "n": 7}},
              open(os.environ["WORKFLOW_RESULTS_PATH"], "w"))
print("ran", mode, "attempt", attempt)
"""


def seed_from_environment(variable: str = "WORKFLOW_RELIABILITY_SEED") -> int:
    """The seed in ``variable``, or a new random one; printed so a failure can be replayed."""
    value = os.environ.get(variable)
    seed = int(value) if value else random.SystemRandom().randrange(2**32)
    print(f"\n{variable}={seed}")
    return seed


@dataclass(frozen=True)
class Kind:
    """A kind of Work and how it must end."""

    mode: str
    retries: int
    phase: str
    attempts: int
    function: bool = False


KINDS = {
    "ok": Kind("ok", retries=0, phase="success", attempts=1),
    "slow": Kind("slow", retries=0, phase="success", attempts=1),
    "flaky": Kind("flaky", retries=2, phase="success", attempts=2),
    "bad": Kind("bad", retries=1, phase="failure", attempts=2),
    "big": Kind("big", retries=0, phase="success", attempts=1),
    "function": Kind("ok", retries=0, phase="success", attempts=1, function=True),
    "hang-first": Kind("hang-first", retries=1, phase="success", attempts=2),
}


@dataclass
class Planned:
    """A Work a test applied, and what it expects of it."""

    name: str
    kind: Kind
    marker: Path


def work_spec(
    pipeline: str, kind: Kind, marker: Path, *, seconds: float = 2.0, timeout: int = 120
) -> dict[str, Any]:
    """The spec of a Work of ``kind`` that records its runs in ``marker``."""
    spec: dict[str, Any] = {
        "pipeline": pipeline,
        "site": "local",
        "user": "reliability",
        "timeout": timeout,
        "retries": kind.retries,
        "backoff": 1,
    }
    if kind.function:
        spec["function"] = "reliability_functions.record"
        spec["parameters"] = {"marker": str(marker), "mode": kind.mode}
        spec["env"] = [{"name": "PYTHONPATH", "value": str(HERE)}]
    else:
        spec["command"] = ["python3", "-c", RUN_SCRIPT, str(marker), kind.mode, str(seconds)]
    return spec


def runs(marker: Path) -> list[int]:
    """The attempt numbers recorded in ``marker``, in the order they ran."""
    if not marker.exists():
        return []
    return [int(line) for line in marker.read_text().split()]


def is_settled(work: dict[str, Any]) -> bool:
    """Finished, and buckets has been told so (BackendSynced=True)."""
    status = work.get("status") or {}
    synced = any(
        c.get("type") == "BackendSynced" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return status.get("phase") in ("success", "failure") and synced


def condition(work: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next(
        (c for c in (work.get("status") or {}).get("conditions") or [] if c.get("type") == kind),
        None,
    )


def buckets_record(url: str, work_id: str, headers: dict[str, str] | None = None) -> dict | None:
    """The buckets record ``work_id``, or None if buckets does not have it."""
    reply = httpx.get(f"{url}/work/{work_id}", headers=headers or {}, timeout=30)
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return reply.json()


def buckets_ids(url: str, pipeline: str, headers: dict[str, str] | None = None) -> list[str]:
    """Every id buckets holds in ``pipeline`` (with repeats, if there were any)."""
    reply = httpx.post(
        f"{url}/view",
        json={"query": {"pipeline": pipeline}, "projection": {"id": True}, "limit": None},
        headers=headers or {},
        timeout=30,
    )
    reply.raise_for_status()
    return [item["id"] for item in reply.json()]


@dataclass
class Audit:
    """What the final comparison found."""

    checked: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def record(self, figures: Counter[str]) -> None:
        figures["works checked"] += self.checked
        figures["works lost"] += len(self.lost)
        figures["works duplicated"] += len(self.duplicated)

    def problems(self) -> list[str]:
        return [*self.lost, *self.duplicated, *self.wrong]


def audit(
    planned: list[Planned],
    works: Any,
    core: Any,
    namespace: str,
    buckets_url: str,
    pipeline: str,
    headers: dict[str, str] | None = None,
) -> Audit:
    """Compare every planned Work with its Jobs, Pods, runs and buckets record."""
    from workflow.controller import resource

    result = Audit()
    all_pods = core.list_namespaced_pod(namespace).items
    ids: dict[str, str] = {}
    for item in planned:
        result.checked += 1
        name, kind = item.name, item.kind
        try:
            work = works.get(name)
        except Exception as error:
            result.lost.append(f"{name}: the Work resource cannot be read: {error}")
            continue
        status = work.get("status") or {}
        if not is_settled(work):
            result.lost.append(f"{name}: not settled: {json.dumps(status)[:600]}")
            continue
        ids[name] = status["bucketsId"]
        if (status["phase"], status["attempt"]) != (kind.phase, kind.attempts):
            result.wrong.append(
                f"{name} ({kind.mode}): ended {status['phase']} at attempt {status['attempt']}, "
                f"expected {kind.phase} at attempt {kind.attempts}; history {status['history']}"
            )
        attempts = list(range(1, status["attempt"] + 1))
        if [h["attempt"] for h in status.get("history") or []] != attempts:
            result.wrong.append(
                f"{name}: history {status.get('history')} is not attempts {attempts}"
            )
        jobs = sorted(job.metadata.name for job in works.jobs(name))
        expected_jobs = sorted(job_name(name, attempt) for attempt in attempts)
        if jobs != expected_jobs:
            where = result.duplicated if len(jobs) > len(expected_jobs) else result.wrong
            where.append(f"{name}: Jobs {jobs}, expected one per attempt: {expected_jobs}")
        pods = Counter(
            pod.metadata.labels.get(resource.ATTEMPT_LABEL)
            for pod in all_pods
            if (pod.metadata.labels or {}).get(resource.WORK_UID_LABEL) == work["metadata"]["uid"]
        )
        if any(count > 1 for count in pods.values()):
            result.duplicated.append(f"{name}: more than one pod for an attempt: {dict(pods)}")
        ran = runs(item.marker)
        if ran != attempts:
            where = (
                result.duplicated
                if len(ran) > len(set(ran)) or len(ran) > len(attempts)
                else result.wrong
            )
            where.append(f"{name}: attempts that ran {ran}, expected each of {attempts} once")
        stored = buckets_record(buckets_url, status["bucketsId"], headers)
        if stored is None:
            result.lost.append(f"{name}: buckets has no record {status['bucketsId']}")
            continue
        if (stored["status"], stored["attempt"]) != (status["phase"], status["attempt"]):
            result.wrong.append(
                f"{name}: buckets says {stored['status']} at attempt {stored['attempt']}, "
                f"the Work {status['phase']} at attempt {status['attempt']}"
            )
        if kind.mode == "big" and (stored.get("results") or {}).get("n") != 7:
            result.lost.append(f"{name}: buckets lost the large results: {str(stored)[:300]}")
    stored_ids = Counter(buckets_ids(buckets_url, pipeline, headers))
    for work_id, count in stored_ids.items():
        if count > 1:
            result.duplicated.append(f"buckets holds {work_id} {count} times")
    strays = set(stored_ids) - set(ids.values())
    if strays and len(ids) == len(planned):
        result.duplicated.append(f"buckets holds records of no Work: {sorted(strays)}")
    return result
