"""Functions the runner's tests name as ``unit.runner.runner_samples.<name>``.

Each misbehaves in one way a user's function might: slow, stubborn, too
chatty, or returning something the runner must refuse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from workflow import RESULTS_LIMIT_BYTES

#: Not a function, to check that the runner says so.
CONSTANT = 42


def nap(seconds: float, marker: str) -> dict[str, Any]:
    """Write this process's id to ``marker``, then sleep."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"woke": True}


def nap_with_child(seconds: float, marker: str) -> dict[str, Any]:
    """Start a grandchild ``sleep``, write its id to ``marker``, then sleep too."""
    child = subprocess.Popen(["sleep", str(seconds)])
    Path(marker).write_text(str(child.pid))
    time.sleep(seconds)
    return {}


def stubborn_nap(seconds: float, marker: str) -> dict[str, Any]:
    """Ignore SIGTERM, then sleep: only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return nap(seconds, marker)


def no_parameters() -> dict[str, Any]:
    return {"called": True}


def not_serializable() -> dict[str, Any]:
    return {"when": object()}


def not_a_number() -> dict[str, Any]:
    return {"value": float("nan")}


def too_large() -> dict[str, Any]:
    return {"blob": "x" * RESULTS_LIMIT_BYTES}


def just_under_the_limit() -> dict[str, Any]:
    return {"blob": "x" * (RESULTS_LIMIT_BYTES - 20)}


def returns_a_number() -> int:
    return 7


def returns_three(a: int) -> tuple[dict[str, Any], list[str], list[str]]:
    return {"a": a}, [f"/data/{a}.h5"], [f"/plots/{a}.png"]


def returns_results_and_products() -> tuple[dict[str, Any], list[str]]:
    return {"n": 1}, ["/data/one.csv"]


def returns_a_bad_tuple() -> tuple[dict[str, Any], str]:
    return {"n": 1}, "not-a-list"


def exits_without_reporting() -> None:
    os._exit(9)


def raises() -> None:
    raise ValueError("the input was negative")


def environment() -> dict[str, Any]:
    """The names and values of this process's environment variables."""
    return {"environ": dict(os.environ)}
