"""Run what a Work asks for, within its timeout, and describe what happened.

``execute(work)`` runs either the Work's ``function`` or its ``command`` and
returns an ``Outcome``; it never raises for a failure of the Work itself.

Functions
    ``function(**parameters)`` runs in a child Python process (see
    ``workflow.runner.child``) with the caller's import path, so that it can
    be stopped at the deadline like a command. It returns a dict of results,
    a tuple ``(results, products, plots)`` (shorter tuples allowed), or None.

Commands
    ``command`` runs as a subprocess; a single item holding spaces runs through
    ``/bin/sh -c`` (as the public client does). Its standard output and error
    are captured, keeping the last 64 KiB of each. A command reports results
    by writing a JSON object to the file named by ``WORKFLOW_RESULTS_PATH``::

        {"results": {"rows": 12}, "products": ["/data/out.h5"], "plots": ["/data/p.png"]}

    Every key is optional; ``results`` is an object, ``products`` and ``plots``
    are lists of strings, and no other key is allowed. When the command writes
    nothing there, the results are ``{"args", "stdout", "stderr", "returncode"}``
    (output as text). A non-zero exit code is a failure either way.

Both run without the buckets token: the runner records the outcome with it,
and the Work's own code never sees it (``child_environment``), so a Work
cannot use its token on anything, not even its own record.

Both run in their own process group. At the deadline the group gets SIGTERM,
then SIGKILL after ``grace`` seconds; once the Work ends, anything it left
running in its group is killed too. On Linux the Work's process is also
killed if the runner itself dies (``PR_SET_PDEATHSIG``). A Work's process
ended by a signal the runner did not send (the out-of-memory killer's
SIGKILL) fails with reason ``Killed``, naming the signal. Results over
``RESULTS_LIMIT_BYTES`` of JSON, or results JSON cannot hold, make the Work
fail: nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow import RESULTS_LIMIT_BYTES, TOKEN_VARIABLES, WORKFLOW_TOKEN_VARIABLES
from workflow.definitions.work import WorkFields

__all__ = [
    "OUTPUT_LIMIT_BYTES",
    "RESULTS_PATH_VARIABLE",
    "Outcome",
    "Reason",
    "child_environment",
    "execute",
]

#: Environment variable naming the file where a command may write its results.
RESULTS_PATH_VARIABLE = "WORKFLOW_RESULTS_PATH"
#: Bytes of a command's standard output (and, separately, error) that are kept.
OUTPUT_LIMIT_BYTES = 64 * 1024
#: Seconds between SIGTERM and SIGKILL when a Work is stopped.
DEFAULT_GRACE = 5.0
#: Longest command quoted in a message, in characters; a message must say what happened.
_SHOWN_COMMAND_CHARS = 200
#: A results file larger than this is not even read (it could never fit the limit).
_RESULTS_FILE_CEILING = 8 * RESULTS_LIMIT_BYTES

Reason = Literal[
    "Completed",
    "Error",
    "DeadlineExceeded",
    "Interrupted",
    "Killed",
    "ImportError",
    "FunctionNotFound",
    "CommandNotFound",
    "InvalidResults",
    "ResultsNotSerializable",
    "ResultsTooLarge",
    "NothingToRun",
]

_CHILD = Path(__file__).with_name("child.py")

try:  # Linux: a Work's process is killed if the runner dies without stopping it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None
_PR_SET_PDEATHSIG = 1


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a Work's process: the runner's, less the buckets token.

    ``WORKFLOW_TOKEN_VARIABLES`` (named for workflow, so they hold only the
    buckets token) are always dropped, and any
    other variable holding the token the runner sends to buckets (the first of
    ``TOKEN_VARIABLES`` that is set, as ``HTTPContext`` reads them). A
    ``GITHUB_TOKEN`` that is not the buckets token is the Work's own and stays.
    """
    environ = os.environ if environ is None else environ
    token = next((environ[name] for name in TOKEN_VARIABLES if environ.get(name, "").strip()), None)
    return {
        name: value
        for name, value in environ.items()
        if name not in WORKFLOW_TOKEN_VARIABLES and (token is None or value != token)
    }


_PR_SET_DUMPABLE = 4


def hide_from_children() -> bool:
    """Make this process's memory and ``/proc/<pid>/environ`` unreadable to its children.

    A Work's process runs as the runner's user, which may read the runner's
    ``/proc/<pid>/environ`` (where the token is) unless the runner is not
    "dumpable"; this clears that flag (Linux ``PR_SET_DUMPABLE``, which also
    turns off core dumps of the runner). The children's own flag is set
    again when they start their program. False where that is not possible.
    """
    if _prctl is None:
        return False
    return bool(_prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)


def _die_with_parent() -> None:
    """Runs in the new process before the command starts: SIGKILL it when the runner dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Outcome(BaseModel):
    """What happened when a Work ran: status, a one-word reason, a sentence and the outputs."""

    model_config = ConfigDict(frozen=True)

    status: Literal["success", "failure"] = Field(description="success or failure.")
    reason: Reason = Field(description="One word: why it ended this way.")
    message: str = Field(description="A sentence for people.")
    exit_code: int | None = Field(
        default=None, description="Exit code of the process; 128+N when killed by signal N."
    )
    results: dict[str, Any] | None = None
    products: list[str] | None = None
    plots: list[str] | None = None
    results_bytes: int | None = Field(
        default=None, description="Size of the results as compact JSON, in bytes."
    )
    start: float = Field(description="Unix time the Work started.")
    stop: float = Field(description="Unix time the Work stopped.")

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def seconds(self) -> float:
        """How long it ran."""
        return self.stop - self.start


def execute(
    work: WorkFields,
    *,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    cancel: threading.Event | None = None,
    echo: bool = False,
) -> Outcome:
    """Run ``work``'s function or command and return how it went.

    ``timeout`` (seconds) defaults to the Work's own. Setting ``cancel`` stops
    the Work as the deadline would, with reason ``Interrupted``. With ``echo``
    a command's output is also copied to this process's stdout and stderr as
    it arrives (a function's output always goes there).
    """
    limit = float(work.timeout if timeout is None else timeout)
    start = time.time()
    if work.function:
        return _run_function(work.function, work.parameters or {}, limit, grace, cancel, start)
    if work.command:
        return _run_command(list(work.command), limit, grace, cancel, echo, start)
    return Outcome(
        status="failure",
        reason="NothingToRun",
        message="the work has neither a function nor a command to run",
        start=start,
        stop=time.time(),
    )


# --------------------------------------------------------------------------- processes
def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def _killed(
    what: str, returncode: int, start: float, results: dict[str, Any] | None = None
) -> Outcome:
    """A Work whose process a signal ended, not the runner (the OOM killer sends SIGKILL)."""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    hint = "; the out-of-memory killer sends SIGKILL" if -returncode == signal.SIGKILL else ""
    return Outcome(
        status="failure",
        reason="Killed",
        message=f"{what} was killed by {name} (exit code {_exit_code(returncode)}){hint}",
        exit_code=_exit_code(returncode),
        results=results,
        start=start,
        stop=time.time(),
    )


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _wait(
    process: subprocess.Popen[bytes], deadline: float, grace: float, cancel: threading.Event | None
) -> Literal["exited", "deadline", "cancelled"]:
    """Wait for ``process``; stop its group at the deadline or when ``cancel`` is set."""
    ended: Literal["exited", "deadline", "cancelled"] = "exited"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            ended = "deadline"
            break
        if cancel is not None and cancel.is_set():
            ended = "cancelled"
            break
        try:
            process.wait(timeout=min(remaining, 0.1 if cancel is not None else remaining))
            break
        except subprocess.TimeoutExpired:
            continue
    if ended != "exited":
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    # Whatever is still running in the group (the process itself after the
    # grace period, or what it started and left behind) goes now.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    return ended


def _stopped(what: str, ended: str, limit: float, start: float, code: int) -> Outcome:
    if ended == "deadline":
        return Outcome(
            status="failure",
            reason="DeadlineExceeded",
            message=f"{what} did not finish within its timeout of {limit:g} s and was stopped",
            exit_code=code,
            start=start,
            stop=time.time(),
        )
    return Outcome(
        status="failure",
        reason="Interrupted",
        message=f"{what} was stopped before it finished, because the runner was asked to stop",
        exit_code=code,
        start=start,
        stop=time.time(),
    )


# --------------------------------------------------------------------------- functions
def _run_function(
    path: str,
    parameters: dict[str, Any],
    limit: float,
    grace: float,
    cancel: threading.Event | None,
    start: float,
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="workflow-function-") as folder:
        request_path = Path(folder, "request.json")
        reply_path = Path(folder, "reply.json")
        request_path.write_text(
            json.dumps(
                {
                    "function": path,
                    "parameters": parameters,
                    "path": [entry or os.getcwd() for entry in sys.path],
                    "limit": RESULTS_LIMIT_BYTES,
                    "reply": str(reply_path),
                    "parent": os.getpid(),
                }
            )
        )
        process = subprocess.Popen(
            [sys.executable, str(_CHILD), str(request_path)],
            stdin=subprocess.DEVNULL,
            env=child_environment(),
            process_group=0,
        )
        ended = _wait(process, time.monotonic() + limit, grace, cancel)
        code = _exit_code(process.returncode)
        if ended != "exited":
            return _stopped(f"function {path}", ended, limit, start, code)
        try:
            reply = json.loads(reply_path.read_text())
        except (OSError, ValueError):
            if process.returncode < 0:
                return _killed(f"the process running function {path}", process.returncode, start)
            return Outcome(
                status="failure",
                reason="Error",
                message=f"the process running function {path} ended with exit code {code} "
                "before reporting an outcome",
                exit_code=code,
                start=start,
                stop=time.time(),
            )
    return Outcome(
        status=reply["status"],
        reason=reply["reason"],
        message=reply["message"],
        exit_code=code,
        results=reply.get("results"),
        products=reply.get("products"),
        plots=reply.get("plots"),
        results_bytes=reply.get("resultsBytes"),
        start=start,
        stop=time.time(),
    )


# --------------------------------------------------------------------------- commands
class _Tail:
    """Drains one pipe in a thread, keeping its last ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int, echo: IO[bytes] | None) -> None:
        self.data = bytearray()
        self.dropped = 0
        self._stream, self._limit, self._echo = stream, limit, echo
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
            if self._echo is not None:
                self._echo.write(chunk)
                self._echo.flush()
            self.data += chunk
            excess = len(self.data) - self._limit
            if excess > 0:
                del self.data[:excess]
                self.dropped += excess

    def close(self) -> None:
        """Close the pipe, unless something outside the Work's group still holds it open."""
        if not self._thread.is_alive():
            self._stream.close()

    def text(self) -> str:
        """The kept output; when some was left out, a first line says how much."""
        self._thread.join(timeout=2.0)
        if not self.dropped:
            return self.data.decode("utf-8", errors="replace")
        # Start at a line boundary: the first kept line was probably cut in the middle.
        newline = self.data.find(b"\n")
        kept = self.data[newline + 1 :] if newline >= 0 else self.data
        dropped = self.dropped + len(self.data) - len(kept)
        return f"[{dropped} earlier bytes were not kept]\n" + kept.decode("utf-8", errors="replace")


def _argv(command: list[str]) -> list[str]:
    if len(command) == 1 and any(space in command[0] for space in " \t\n"):
        return ["/bin/sh", "-c", command[0]]
    return command


def _run_command(
    command: list[str],
    limit: float,
    grace: float,
    cancel: threading.Event | None,
    echo: bool,
    start: float,
) -> Outcome:
    shown = (
        command[0] if _argv(command)[0] == "/bin/sh" and len(command) == 1 else shlex.join(command)
    )
    if len(shown) > _SHOWN_COMMAND_CHARS:  # keep what happened to it in sight
        shown = shown[: _SHOWN_COMMAND_CHARS - 1] + "…"
    with tempfile.TemporaryDirectory(prefix="workflow-command-") as folder:
        results_path = Path(folder, "results.json")
        environment = {**child_environment(), RESULTS_PATH_VARIABLE: str(results_path)}
        try:
            process = subprocess.Popen(
                _argv(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=environment,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError:
            return Outcome(
                status="failure",
                reason="CommandNotFound",
                message=f"command {command[0]!r} was not found, neither as a path nor on PATH",
                start=start,
                stop=time.time(),
            )
        except OSError as error:
            return Outcome(
                status="failure",
                reason="CommandNotFound",
                message=f"command {command[0]!r} could not be started: {error.strerror or error}",
                start=start,
                stop=time.time(),
            )
        assert process.stdout is not None and process.stderr is not None
        stdout = _Tail(process.stdout, OUTPUT_LIMIT_BYTES, _binary(sys.stdout) if echo else None)
        stderr = _Tail(process.stderr, OUTPUT_LIMIT_BYTES, _binary(sys.stderr) if echo else None)
        ended = _wait(process, time.monotonic() + limit, grace, cancel)
        code = _exit_code(process.returncode)
        captured: dict[str, Any] = {
            "args": command,
            "stdout": stdout.text(),
            "stderr": stderr.text(),
            "returncode": process.returncode,
        }
        stdout.close()
        stderr.close()
        if ended != "exited":
            return _stopped(f"command `{shown}`", ended, limit, start, code)
        if process.returncode < 0:
            return _killed(f"command `{shown}`", process.returncode, start, captured)
        reported = _read_results_file(results_path, shown)
    if isinstance(reported, Outcome):
        return reported.model_copy(update={"exit_code": code, "start": start, "stop": time.time()})
    results, products, plots = reported if reported is not None else (captured, None, None)
    try:
        size = _json_bytes(results)
    except ValueError as error:
        return Outcome(
            status="failure",
            reason="ResultsNotSerializable",
            message=f"the results of command `{shown}` cannot be stored as JSON: {error}",
            exit_code=code,
            start=start,
            stop=time.time(),
        )
    if size is not None and size > RESULTS_LIMIT_BYTES:
        return Outcome(
            status="failure",
            reason="ResultsTooLarge",
            message=f"the results of command `{shown}` are {size} bytes of JSON, over the "
            f"limit of {RESULTS_LIMIT_BYTES} bytes; store large outputs as products",
            exit_code=code,
            results_bytes=size,
            start=start,
            stop=time.time(),
        )
    if code == 0:
        status, reason, message = "success", "Completed", f"command `{shown}` exited with code 0"
    else:
        last = next(
            (line for line in reversed(captured["stderr"].splitlines()) if line.strip()), ""
        )
        status, reason = "failure", "Error"
        message = f"command `{shown}` exited with code {code}" + (f": {last[:300]}" if last else "")
    return Outcome(
        status=status,
        reason=reason,
        message=message,
        exit_code=code,
        results=results,
        products=products,
        plots=plots,
        results_bytes=size,
        start=start,
        stop=time.time(),
    )


def _json_bytes(results: dict[str, Any] | None) -> int | None:
    """Size of ``results`` as compact JSON; ValueError for NaN or infinities."""
    if results is None:
        return None
    return len(json.dumps(results, separators=(",", ":"), allow_nan=False).encode())


def _binary(stream: Any) -> IO[bytes] | None:
    return getattr(stream, "buffer", None)


def _read_results_file(
    path: Path, shown: str
) -> tuple[dict[str, Any] | None, list[str] | None, list[str] | None] | Outcome | None:
    """What a command wrote to its results file: None if nothing, an Outcome if unusable."""

    def problem(reason: Reason, message: str, size: int | None = None) -> Outcome:
        return Outcome(
            status="failure", reason=reason, message=message, results_bytes=size, start=0, stop=0
        )

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    if size > _RESULTS_FILE_CEILING:
        return problem(
            "ResultsTooLarge",
            f"command `{shown}` wrote {size} bytes to its results file, over the limit of "
            f"{RESULTS_LIMIT_BYTES} bytes; store large outputs as products",
            size,
        )
    try:
        envelope = json.loads(path.read_bytes())
    except ValueError as error:
        return problem(
            "ResultsNotSerializable",
            f"command `{shown}` wrote a results file that is not valid JSON: {error}",
        )
    if not isinstance(envelope, dict):
        return problem(
            "InvalidResults",
            f"command `{shown}` wrote {type(envelope).__name__} to its results file; "
            'it must be an object like {"results": {...}, "products": [...], "plots": [...]}',
        )
    unknown = sorted(set(envelope) - {"results", "products", "plots"})
    if unknown:
        return problem(
            "InvalidResults",
            f"command `{shown}` wrote unknown keys {unknown} to its results file; "
            "only results, products and plots are allowed",
        )
    results, products, plots = (envelope.get(key) for key in ("results", "products", "plots"))
    if results is not None and not isinstance(results, dict):
        return problem(
            "InvalidResults", f"results in the results file of {shown!r} must be an object"
        )
    for name, items in (("products", products), ("plots", plots)):
        if items is not None and not (
            isinstance(items, list) and all(isinstance(item, str) for item in items)
        ):
            return problem(
                "InvalidResults",
                f"{name} in the results file of {shown!r} must be a list of strings",
            )
    return results, products, plots
