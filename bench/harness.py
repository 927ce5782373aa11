"""What every benchmark shares: statistics, figures and results, processes and their cost.

A benchmark returns a ``Report``: named ``Figure`` values, each with the
ceiling it is compared with, the ratio, the runs it is the median of, and
the issue's target when it has one. ``__main__`` writes reports as JSON and
renders the README table from them.

Processes started here run in their own session and are stopped by PID
(SIGTERM, then SIGKILL after a grace period); nothing is ever stopped by name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def use_repo_paths() -> None:
    """Make ``fixtures`` (tests/) and ``localcluster`` (hack/) importable, as pytest does."""
    for folder in (ROOT / "tests", ROOT / "hack"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


# -- statistics ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return float(ordered[rank])


def ratio(value: float, ceiling: float | None) -> float | None:
    if ceiling is None or not ceiling or math.isnan(ceiling) or math.isnan(value):
        return None
    return value / ceiling


# -- reports ------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure, with its same-run ceiling when it has one."""

    name: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_name: str | None = None
    runs: list[float] = field(default_factory=list)
    target: str | None = None
    met: bool | None = None
    note: str | None = None
    #: Ratios of paired measurements (each run against its own ceiling); their median is the ratio.
    ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.ratios:
            return median(self.ratios)
        return ratio(self.value, self.ceiling)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


@dataclass
class Report:
    """What one benchmark measured."""

    name: str
    title: str
    command: str
    quick: bool
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "command": self.command,
            "quick": self.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(self.seconds, 1),
            "machine": machine(),
            "figures": [figure.as_json() for figure in self.figures],
            "details": self.details,
            "notes": self.notes,
        }


def machine() -> dict[str, Any]:
    """What the numbers depend on: cores, load, Python."""
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def write_report(report: Report, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.name}.json"
    path.write_text(json.dumps(report.as_json(), indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


# -- processes ----------------------------------------------------------------------------


def free_port() -> int:
    use_repo_paths()
    from fixtures.postgres import free_port as fixture_free_port

    return fixture_free_port()


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without ``WORKFLOW_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")}
    env.update(extra)
    return env


def start(argv: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session with its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM to the process by PID, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until truthy; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = predicate()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """CPU seconds (user + system) and memory of one process, read from /proc."""

    cpu: float
    rss_mb: float
    peak_rss_mb: float


def usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    values = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith("Vm")}
    return Usage(
        cpu=cpu, rss_mb=values.get("VmRSS", 0) / 1024, peak_rss_mb=values.get("VmHWM", 0) / 1024
    )


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Print how long a step took (benchmarks are long; show progress)."""
    began = time.monotonic()
    say(f"{name} ...")
    try:
        yield
    finally:
        say(f"{name}: {time.monotonic() - began:.1f} s")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    """How a benchmark is run: full or ``quick`` (a smoke run of seconds), and where."""

    quick: bool
    workdir: Path

    def pick(self, full: Any, quick: Any) -> Any:
        """``quick`` in a smoke run, else ``full``."""
        return quick if self.quick else full

    def command(self, name: str) -> str:
        return f"python -m bench --only {name}" + (" --quick" if self.quick else "")


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, its live children and the children it has reaped.

    For PostgreSQL's postmaster this is the CPU of every backend, those that
    still serve connections and those that have exited.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return total + sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
