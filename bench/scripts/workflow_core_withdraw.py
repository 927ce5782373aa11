"""A worker's withdraw loop written with the PUBLIC ``workflow-core`` client (run in its venv).

``bench.client_compat`` runs this file with the Python of a virtualenv that
has ``workflow-core==1.12.3``, so ``import workflow`` here is the public
package, never ours. Usage: ``python workflow_core_withdraw.py MODE START SECONDS
PIPELINE…``: wait until the Unix time START (so every worker has finished
importing), then call ``Work.withdraw(pipeline=[…])`` until SECONDS have
passed or nothing is left, and print one JSON line with the claimed ids.
MODE ``loop`` passes one ``HTTPContext`` to every call, as the client's own
``workflow run`` loop does; ``naive`` passes none, as a short script does,
so every call builds a new context (which first probes ``HEAD /version``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.simplefilter("ignore")  # the public client warns when it has no token

from workflow.definitions.work import Work  # noqa: E402 - the public client
from workflow.http.context import HTTPContext  # noqa: E402


def main() -> None:
    mode, begin, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    pipelines = sys.argv[4:]
    http = HTTPContext() if mode == "loop" else None
    time.sleep(max(0.0, begin - time.time()))
    began = time.perf_counter()
    ids, latencies = [], []
    while time.perf_counter() - began < seconds:
        sent = time.perf_counter()
        work = Work.withdraw(pipeline=pipelines, http=http)
        if work is None:
            break
        latencies.append(time.perf_counter() - sent)
        ids.append(work.id)
    print(json.dumps({"ids": ids, "seconds": time.perf_counter() - began, "latencies": latencies}))


if __name__ == "__main__":
    main()
