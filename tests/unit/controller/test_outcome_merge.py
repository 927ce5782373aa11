"""The operator's writes to buckets keep the outcome the runner recorded there.

The runner sends an attempt's whole outcome to buckets; the operator sees it
only through the 4 KiB termination message. Found by the reliability suite:
a long list of products was erased by the operator's final write, and large
results were lost when the operator's "running" write landed after the
runner's outcome.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from workflow.controller.buckets_sync import BucketsSync
from workflow.controller.records import merge_outcome

PRODUCTS = [f"/data/out-{n}.h5" for n in range(300)]


def doc(**fields):
    base = {"id": "w1", "pipeline": "p", "site": "s", "user": "u", "attempt": 1}
    return {**base, **fields}


def test_a_running_write_does_not_undo_the_recorded_outcome_of_the_same_attempt():
    stored = doc(status="success", results={"n": 7}, products=PRODUCTS)
    assert merge_outcome(doc(status="running", results=None), stored, attempt_ended=False) is None


def test_a_running_write_for_a_new_attempt_replaces_the_previous_outcome():
    stored = doc(status="failure", results={"n": 1})
    merged = merge_outcome(
        doc(status="running", attempt=2, results=None), stored, attempt_ended=False
    )
    assert merged is not None and merged["status"] == "running" and merged["attempt"] == 2


def test_the_final_write_keeps_products_and_plots_the_summary_left_out():
    stored = doc(status="success", results={"n": 7}, products=PRODUCTS, plots=["/p.png"])
    mine = doc(status="success", results={"n": 7}, products=None, plots=None)
    merged = merge_outcome(mine, stored, attempt_ended=True)
    assert merged is not None
    assert merged["products"] == PRODUCTS and merged["plots"] == ["/p.png"]


def test_the_final_write_keeps_results_it_left_out_because_they_were_truncated():
    stored = doc(status="success", results={"blob": "x" * 100_000})
    merged = merge_outcome(doc(status="success"), stored, attempt_ended=True)
    assert merged is not None and merged["results"] == {"blob": "x" * 100_000}


def test_outputs_of_an_earlier_attempt_are_not_carried_into_a_later_one():
    stored = doc(status="failure", attempt=1, products=["/old"])
    merged = merge_outcome(
        doc(status="success", attempt=2, products=None), stored, attempt_ended=True
    )
    assert merged is not None and merged["products"] is None


def test_the_operators_own_outputs_win_over_the_stored_ones():
    stored = doc(status="success", results={"n": 1}, products=["/a"])
    merged = merge_outcome(
        doc(status="success", results={"n": 2}, products=["/b"]), stored, attempt_ended=True
    )
    assert merged is not None and merged["results"] == {"n": 2} and merged["products"] == ["/b"]


def test_the_buckets_sync_reads_then_writes_the_merged_record():
    sent: list[dict] = []
    stored = doc(status="success", results={"n": 7}, products=PRODUCTS)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=stored)
        if request.method == "PUT":
            sent.extend(json.loads(request.content))
            return httpx.Response(200, json=True)
        return httpx.Response(405, json={"detail": "no"})

    async def scenario() -> tuple[bool, bool]:
        sync = BucketsSync(
            url="http://buckets.test", token=None, timeout=5, transport=httpx.MockTransport(handler)
        )
        try:
            skipped = await sync.update(doc(status="running", results=None), attempt_ended=False)
            written = await sync.update(doc(status="success", results={"n": 7}, products=None))
        finally:
            await sync.close()
        return skipped, written

    skipped, written = asyncio.run(scenario())
    assert (skipped, written) == (False, True)
    assert len(sent) == 1 and sent[0]["products"] == PRODUCTS and sent[0]["status"] == "success"
