"""What the operator says when it starts matches what it does."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_the_operator_names_the_namespace_it_was_given_with_n(
    operator_process, buckets_process, namespace
) -> None:
    operator = operator_process(buckets_process.url, **buckets_process.operator_env)
    deadline = time.monotonic() + 60
    while "watching Works in" not in operator.log() and time.monotonic() < deadline:
        time.sleep(0.3)
    line = next(line for line in operator.log().splitlines() if "watching Works in" in line)
    assert f"watching Works in {namespace};" in line, line
    assert "all namespaces" not in line
