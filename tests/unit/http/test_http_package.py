"""The public surface of workflow.http."""

from __future__ import annotations

import workflow.http


def test_all_is_sorted_and_unique() -> None:
    assert workflow.http.__all__ == sorted(set(workflow.http.__all__))


def test_every_name_in_all_is_importable() -> None:
    for name in workflow.http.__all__:
        assert getattr(workflow.http, name) is not None, name


def test_the_clients_and_the_context_are_public() -> None:
    assert {"AsyncBuckets", "Buckets", "HTTPContext", "BucketsError"} <= set(workflow.http.__all__)
