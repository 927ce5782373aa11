"""Functions the reliability tests' Works run (their pods get this folder on PYTHONPATH)."""

from __future__ import annotations

import json
import math
import os


def record(marker: str, mode: str = "ok") -> dict[str, int]:
    """Append this attempt's number to ``marker``, as the command Works do; fail if mode is bad."""
    attempt = json.loads(os.environ["WORKFLOW_WORK"])["attempt"]
    with open(marker, "a") as stream:
        stream.write(f"{attempt}\n")
    if mode == "bad":
        raise RuntimeError("bad on purpose")
    return {"attempt": attempt}


def not_serializable() -> dict[str, object]:
    """Results JSON cannot hold: a set and a NaN."""
    return {"tags": {"a", "b"}, "ratio": math.nan}
