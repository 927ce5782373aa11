"""schemathesis against buckets' own OpenAPI document: no request makes it fail or hang.

Every operation the served ``/openapi.json`` describes is called with
requests generated from its schemas, valid ones (``positive``) and
deliberately invalid ones (``negative``), on both stores. Every answer must
come within 10 s and be below 500, and every 4xx must carry a ``detail`` that
names the problem. Bounded for CI by ``WORKFLOW_FUZZ_EXAMPLES`` (examples per
operation, mode and store; default 20); the generation is derandomized, so a
failure repeats.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("WORKFLOW_FUZZ_EXAMPLES", "20"))


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_no_generated_request_makes_buckets_fail_or_hang(buckets, mode, figures):
    schema = schemathesis.openapi.from_url(f"{buckets.url}/openapi.json")
    failures: list[str] = []
    tried = 0

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case) -> None:
            nonlocal tried
            tried += 1
            try:
                response = case.call(base_url=buckets.url, timeout=10)
            except Exception as error:  # a timeout or a dropped connection
                raise AssertionError(f"no answer: {type(error).__name__}: {error}") from None
            assert response.status_code < 500, (
                f"answered {response.status_code}: {response.text[:300]}; body {case.body!r:.300}"
            )
            if response.status_code >= 400 and case.method.upper() != "HEAD":
                detail = response.json().get("detail")
                assert isinstance(detail, str) and detail.strip(), response.text[:300]

        try:
            call()
        except Unsatisfiable:
            continue  # nothing invalid can be said to an operation without inputs
        except AssertionError as error:
            failures.append(f"{operation.label}: {str(error)[:1500]}")

    figures["bad inputs tried"] += tried
    print(f"\n[{buckets.store}, {mode.value}] {tried} generated requests")
    assert tried > 0
    assert not failures, "\n".join(failures)
    assert httpx.get(f"{buckets.url}/healthz", timeout=10).status_code == 200
