"""What the runner sends to buckets is never overwritten by the operator's own, smaller copy.

The runner records a Work's whole outcome in buckets; the operator only sees
the summary in the pod's termination message (4 KiB), which leaves out large
results and long lists of products and plots. The operator's later writes to
buckets must keep what it did not see.
"""

from __future__ import annotations

import pytest
from reliability_helpers import buckets_record

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

WRITER = """
import json, os
products = [f"/data/products/run-0001/output-file-{n:04d}.h5" for n in range(300)]
plots = [f"/data/plots/run-0001/figure-{n:04d}.png" for n in range(200)]
json.dump({"results": {"blob": "x" * 100000, "n": 7}, "products": products, "plots": plots},
          open(os.environ["WORKFLOW_RESULTS_PATH"], "w"))
"""


def test_results_products_and_plots_too_large_for_the_summary_stay_whole_in_buckets(
    operator_process, works, buckets_process
):
    operator_process(buckets_process.url, **buckets_process.operator_env)
    works.apply(
        "outputs",
        {"pipeline": "outcome", "site": "local", "user": "tester", "timeout": 60, "retries": 0,
         "command": ["python3", "-c", WRITER]},
    )  # fmt: skip
    work = works.wait_phase("outputs", "success", "failure", timeout=180)
    assert work["status"]["phase"] == "success", work["status"]
    assert work["status"]["resultsTruncated"] is True
    stored = buckets_record(buckets_process.url, work["status"]["bucketsId"])
    assert stored is not None and stored["status"] == "success"
    assert stored["results"]["n"] == 7 and len(stored["results"]["blob"]) == 100000
    assert stored["products"] is not None and len(stored["products"]) == 300
    assert stored["plots"] is not None and len(stored["plots"]) == 200
