"""Process bookkeeping for what the local cluster starts.

Everything is started in its own session, so its process group id equals its
pid, and recorded together with the kernel's start time of that pid: a
later ``down`` - maybe from another process - signals a group only if the
recorded pid still names the same process, never by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

#: Children started by this process, kept so they are reaped (and never garbage-collected
#: while running, which Python reports as a ResourceWarning).
_children: dict[int, subprocess.Popen[bytes]] = {}


def adopt(proc: subprocess.Popen[bytes]) -> None:
    """Keep ``proc`` until it has been reaped."""
    _children[proc.pid] = proc


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessRecord:
    """A started process: its pid (also its process group) and kernel start time."""

    name: str
    pid: int
    start_time: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(name=data["name"], pid=int(data["pid"]), start_time=int(data["start_time"]))

    @classmethod
    def of(cls, name: str, pid: int) -> ProcessRecord:
        return cls(name=name, pid=pid, start_time=start_time_of(pid) or 0)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks since boot; None if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_running(record: ProcessRecord) -> bool:
    """True when the recorded process still exists, is not a zombie, and is the same process."""
    _reap(record.pid)
    fields = _stat_fields(record.pid)
    if not fields or fields[0] == "Z":
        return False
    return int(fields[19]) == record.start_time


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, *, grace: float = 10.0) -> None:
    """SIGTERM the record's process group, wait up to ``grace`` s, then SIGKILL it."""
    if not is_running(record):
        # Linux never hands out a pid that still names a process group, so with
        # no process left at that pid the group, if any, is the leader's leftovers.
        if start_time_of(record.pid) is None:
            _kill_group(record.pid, signal.SIGKILL)
        _forget(record.pid)
        return
    _kill_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_running(record):
            break
        time.sleep(0.1)
    if is_running(record) or start_time_of(record.pid) is None:
        _kill_group(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_running(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    _forget(record.pid)


def _forget(pid: int) -> None:
    """Reap a child of ours that has been stopped."""
    proc = _children.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _children[pid] = proc


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
