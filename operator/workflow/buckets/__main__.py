"""``python -m workflow.buckets``: serve the API with settings from the environment.

The same as ``workflow buckets serve`` without options; handy where only the
package (not its console script) is on the path, as in test harnesses.
"""

import logging
import sys

from workflow.buckets.serving import serve
from workflow.buckets.settings import BucketsSettings


def main() -> None:
    settings = BucketsSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(
        f"buckets: serving http://{settings.host}:{settings.port} "
        f"with the {settings.store_kind} store at {settings.safe_database}",
        file=sys.stderr,
        flush=True,
    )
    serve(settings, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
