"""The operator SIGKILLed at random points of many Works' lives: nothing lost, nothing run twice.

One test, in rounds: each round may apply a few new Works (commands and
functions that succeed, fail, fail once then succeed, run for a while, or
return results too large for the resource), then starts the operator set to
SIGKILL itself at the n-th passage of a random crash point
(``WORKFLOW_OPERATOR_CRASH_AT``), or kills it at a random moment while Jobs
run. After the last kill the operator runs undisturbed until every Work has
settled, and ``audit`` checks each Work: the right final phase and attempt,
exactly one Job (and one pod) per attempt, each attempt run exactly once
(the Works record their runs in marker files), and buckets agreeing with
the Work resource.

The seed is printed; replay a run with ``WORKFLOW_RELIABILITY_SEED=<seed>``.
A longer soak: ``WORKFLOW_RELIABILITY_KILLS=500 WORKFLOW_RELIABILITY_WORKS=400``.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter

import pytest
from kubernetes import client
from reliability_helpers import KINDS, Planned, audit, is_settled, seed_from_environment, work_spec

from workflow.controller.faults import POINTS

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PIPELINE = "killpoints"
#: How often each kind of Work is applied, and each kind of kill chosen.
KIND_WEIGHTS = {"ok": 3, "slow": 3, "flaky": 2, "bad": 2, "big": 1, "function": 2}
KILL_WEIGHTS = {point: 3 for point in POINTS} | {"timed": 4}
DEPOSIT_POINTS = ("before-deposit", "after-deposit")
#: Seconds a run set to crash at a point may take to reach it before it is killed anyway.
CRASH_WAIT = 7.0


def test_works_survive_the_operator_killed_at_fifty_random_points(
    operator_process, works, buckets_process, kube, namespace, tmp_path, figures
):
    seed = seed_from_environment()
    rng = random.Random(seed)
    wanted = int(os.environ.get("WORKFLOW_RELIABILITY_KILLS", "50"))
    most = int(os.environ.get("WORKFLOW_RELIABILITY_WORKS", "70"))
    markers = tmp_path / "runs"
    markers.mkdir()
    planned: list[Planned] = []

    def apply(count: int) -> int:
        applied = 0
        for _ in range(count):
            if len(planned) >= most:
                break
            kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
            name = f"k{len(planned):03d}-{kind}"
            marker = markers / name
            spec = work_spec(PIPELINE, KINDS[kind], marker, seconds=round(rng.uniform(1, 5), 1))
            works.apply(name, spec)
            planned.append(Planned(name, KINDS[kind], marker))
            applied += 1
        return applied

    kills: Counter[str] = Counter()
    #: Runs whose crash point did not fire in time: killed from outside, not counted as kills.
    unfired: Counter[str] = Counter()
    operator = None
    began = time.monotonic()
    while sum(kills.values()) < wanted:
        applied = apply(rng.choice([0, 1, 1, 1, 2]))
        choices = {
            point: weight
            for point, weight in KILL_WEIGHTS.items()
            if applied or point not in DEPOSIT_POINTS
        }
        point = rng.choices(list(choices), weights=list(choices.values()))[0]
        crash_at = "" if point == "timed" else f"{point}:{rng.randint(1, 2)}"
        if operator is None:
            operator = operator_process(
                buckets_process.url,
                **buckets_process.operator_env,
                WORKFLOW_OPERATOR_CRASH_AT=crash_at,
            )
        else:
            operator.start(WORKFLOW_OPERATOR_CRASH_AT=crash_at)
        if point == "timed":
            time.sleep(rng.uniform(0.5, 4.0))
            assert operator.process.poll() is None, operator.log()[-3000:]
            operator.kill()
            kills["at a random moment"] += 1
            continue
        try:
            code = operator.wait_exit(CRASH_WAIT)
        except subprocess.TimeoutExpired:
            operator.kill()
            unfired[point] += 1
            assert sum(unfired.values()) <= wanted, (
                f"seed {seed}: crash points did not fire within {CRASH_WAIT} s "
                f"{sum(unfired.values())} times ({dict(unfired)}), against "
                f"{sum(kills.values())} kills: is WORKFLOW_OPERATOR_CRASH_AT honoured?"
            )
            continue
        assert code == -9, (
            f"the operator exited with {code}, not by its crash point:\n" + (operator.log()[-4000:])
        )
        kills[point] += 1

    killed_for = time.monotonic() - began
    never = [point for point in POINTS if not kills[point]]
    assert not never, (
        f"seed {seed}: crash points that never fired: {never} (runs that did not reach "
        f"their point: {dict(unfired)}; kills: {dict(kills)})"
    )
    assert operator is not None
    operator.start(WORKFLOW_OPERATOR_CRASH_AT="")
    deadline = time.monotonic() + 420
    unsettled = [item.name for item in planned]
    while unsettled and time.monotonic() < deadline:
        unsettled = [name for name in unsettled if not is_settled(works.get(name))]
        time.sleep(1)
    result = audit(
        planned, works, client.CoreV1Api(kube), namespace, buckets_process.url, PIPELINE,
        buckets_process.headers,
    )  # fmt: skip
    survived = sum(kills.values())
    figures["kill points survived"] += survived
    figures["faults injected"] += survived
    result.record(figures)
    print(
        f"\nseed {seed}: {survived} operator kills over {len(planned)} Works in "
        f"{killed_for:.0f} s, then settled in {time.monotonic() - began - killed_for:.0f} s; "
        f"lost {len(result.lost)}, duplicated {len(result.duplicated)}, "
        f"wrong {len(result.wrong)}\nkills by point: {dict(sorted(kills.items()))}; "
        f"crash point not reached in time (killed, not counted): {dict(sorted(unfired.items()))}"
    )
    assert not result.problems(), (
        f"seed {seed}:\n" + "\n".join(result.problems()) + "\n" + operator.log()[-3000:]
    )
