"""The ``Work`` object against a real buckets: results it cannot hold are never erased.

A record whose results exceed the 4 MiB a ``Work`` keeps (the runner may
store up to the server's body limit) is read with ``Work.withdraw``; the
script then reports an outcome with ``update()``. The stored results must
survive that round trip, on both stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow import RESULTS_LIMIT_BYTES
from workflow.definitions.work import Work
from workflow.http import Buckets

pytestmark = pytest.mark.integration


def test_update_after_withdrawing_a_record_with_results_over_4_mib_keeps_them(
    buckets, buckets_workspace: Path
) -> None:
    work = Work(pipeline="large-results", site="local", user="tester", command=["true"])
    [work_id] = work.deposit(return_ids=True)
    big = {"blob": "x" * (RESULTS_LIMIT_BYTES + 1024)}
    with Buckets(baseurl=buckets.url) as client:
        stored = client.get(work_id)
        client.update([{**stored, "results": big}])

    with pytest.warns(UserWarning, match="over the"):
        claimed = Work.withdraw(pipeline="large-results")
    assert claimed is not None and claimed.id == work_id and claimed.results is None
    claimed.status = "success"
    assert claimed.update() is True

    with Buckets(baseurl=buckets.url) as client:
        record = client.get(work_id)
    assert record["status"] == "success"
    assert record["results"] == big
