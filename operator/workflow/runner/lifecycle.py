"""One attempt of a Work, from claim to recorded outcome, and the loop that repeats it.

An attempt:

1. numbers itself (``attempt`` becomes at least 1; buckets' withdraw or the
   operator may already have set it) and marks the Work ``running``;
2. runs it with ``workflow.runner.execute``;
3. writes status, results, products, plots and stop time to the Work and, when
   the Work has an id and buckets is at hand, to its buckets record;
4. writes a compact JSON summary to the termination log (what Kubernetes
   shows as the container's termination message, at most 4096 bytes).

Exit codes of the runner: 0 when every Work it ran succeeded (or there was
none), 1 when one failed, 2 when it could not run at all (bad arguments, an
unreadable Work, buckets unreachable).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workflow.definitions.work import WorkDocument
from workflow.http.buckets import Buckets
from workflow.http.errors import BucketsError, Conflict
from workflow.runner.execute import DEFAULT_GRACE, Outcome, execute

__all__ = [
    "DEFAULT_TERMINATION_LOG",
    "EXIT_FAILURE",
    "EXIT_SUCCESS",
    "EXIT_UNUSABLE",
    "TERMINATION_LIMIT_BYTES",
    "TERMINATION_LOG_VARIABLE",
    "Attempt",
    "Filters",
    "InvalidWork",
    "Tally",
    "attempt",
    "parse_work",
    "serve",
    "summarize",
    "termination_log_path",
    "write_termination_log",
]

logger = logging.getLogger("workflow.runner")

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_UNUSABLE = 2

#: Environment variable naming the file the summary is written to ("" turns it off).
TERMINATION_LOG_VARIABLE = "WORKFLOW_TERMINATION_LOG"
#: Where Kubernetes reads a container's termination message by default.
DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
#: Kubernetes keeps at most this many bytes of a termination message.
TERMINATION_LIMIT_BYTES = 4096
#: Longest message kept in the summary, in characters.
_SUMMARY_MESSAGE_CHARS = 1024


class InvalidWork(ValueError):
    """A Work given to the runner cannot be read or is not a valid Work."""


@dataclass(frozen=True)
class Attempt:
    """One attempt as it ended: the Work as recorded, how it went, and where it was recorded."""

    work: WorkDocument
    outcome: Outcome
    #: True: buckets holds the outcome; False: the update failed; None: not sent.
    recorded: bool | None
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return EXIT_SUCCESS if self.outcome.succeeded else EXIT_FAILURE


@dataclass(frozen=True)
class Filters:
    """Which queued Works a runner may claim (the withdraw filters)."""

    pipelines: tuple[str, ...]
    site: str | None = None
    priority: int | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    events: tuple[int, ...] = ()
    parents: tuple[str, ...] = ()

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``Buckets.withdraw``."""
        return {
            "pipeline": list(self.pipelines),
            "site": self.site,
            "priority": self.priority,
            "user": self.user,
            "tags": list(self.tags) or None,
            "event": list(self.events) or None,
            "parent": list(self.parents) or None,
        }


# --------------------------------------------------------------------------- input
def parse_work(text: str, source: str) -> WorkDocument:
    """The Work in ``text`` (JSON or YAML) read from ``source`` (named in errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidWork(f"the work in {source} is neither JSON nor YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise InvalidWork(
            f"the work in {source} must be a mapping of fields, not {type(data).__name__}"
        )
    try:
        return WorkDocument.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'work'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidWork(f"the work in {source} is invalid: {problems}") from None


# --------------------------------------------------------------------------- summary
def termination_log_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where to write the summary: ``WORKFLOW_TERMINATION_LOG`` if set ("" means nowhere),
    else ``/dev/termination-log`` if it exists and is writable, else nowhere."""
    if TERMINATION_LOG_VARIABLE in environ:
        value = environ[TERMINATION_LOG_VARIABLE].strip()
        return Path(value) if value else None
    if DEFAULT_TERMINATION_LOG.is_file() and os.access(DEFAULT_TERMINATION_LOG, os.W_OK):
        return DEFAULT_TERMINATION_LOG
    return None


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fits(summary: dict[str, Any]) -> bool:
    return len(_compact(summary).encode()) <= TERMINATION_LIMIT_BYTES


def summarize(work: WorkDocument, outcome: Outcome, recorded: bool | None) -> dict[str, Any]:
    """A JSON summary of the attempt that fits a termination message (≤ 4096 bytes).

    Results are included only if they fit; otherwise ``resultsTruncated`` and
    ``resultsBytes`` say so (the full results are in buckets). Products and
    plots are dropped the same way, then the message is shortened.
    """
    message = outcome.message
    if len(message) > _SUMMARY_MESSAGE_CHARS:
        message = message[: _SUMMARY_MESSAGE_CHARS - 1] + "…"
    summary: dict[str, Any] = {
        "status": outcome.status,
        "reason": outcome.reason,
        "message": message,
        "exitCode": outcome.exit_code,
        "attempt": work.attempt,
        "start": outcome.start,
        "stop": outcome.stop,
        "id": work.id,
        "pipeline": work.pipeline,
        "recorded": recorded,
        "results": outcome.results,
        "products": outcome.products,
        "plots": outcome.plots,
    }
    if outcome.results_bytes is not None and outcome.results is None:
        summary["resultsBytes"] = outcome.results_bytes
    if not _fits(summary):
        del summary["results"]
        summary["resultsTruncated"] = True
        summary["resultsBytes"] = outcome.results_bytes
    for name in ("products", "plots"):
        if not _fits(summary) and summary.get(name):
            del summary[name]
            summary[f"{name}Truncated"] = True
    while not _fits(summary) and summary["message"]:
        summary["message"] = summary["message"][: len(summary["message"]) // 2] + "…"
    return summary


def write_termination_log(summary: Mapping[str, Any], path: Path | None) -> None:
    """Write ``summary`` to ``path``; a failure to write is logged, never raised."""
    if path is None:
        return
    try:
        path.write_text(_compact(summary))
    except OSError as error:
        logger.warning("could not write the summary to %s: %s", path, error)


# --------------------------------------------------------------------------- attempt
def _record(buckets: Buckets | None, work: WorkDocument, stage: str) -> bool | None:
    """Write ``work`` to its buckets record, guarded: never over a newer record (see below).

    buckets refuses (``Conflict``) a record that is further along than this
    one: a later attempt, or this attempt already ended when this is its
    start. A start record delayed past the outcome (retries of a slow
    request, a pod of an old attempt still running) is thereby dropped
    instead of turning a finished Work back into a running one.
    """
    if buckets is None or not work.id:
        return None
    try:
        buckets.update([work.model_dump(mode="json")], guarded=True)
    except Conflict as error:
        logger.warning(
            "buckets holds newer news of work %s than this %s: %s", work.id, stage, error
        )
        return False
    except BucketsError as error:
        logger.error("could not record the %s of work %s in buckets: %s", stage, work.id, error)
        return False
    return True


def attempt(
    work: WorkDocument,
    *,
    buckets: Buckets | None = None,
    withdrawn: bool = False,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    cancel: threading.Event | None = None,
    echo: bool = False,
    termination_log: Path | None = None,
    reconnect: Callable[[], Buckets | None] | None = None,
) -> Attempt:
    """Run one attempt of ``work``, record it, and write its summary to ``termination_log``.

    ``withdrawn`` says buckets already marked the Work running (a withdraw did);
    otherwise a Work with an id is marked running in buckets, with its attempt
    and start time, before it starts, even when the document given says
    ``running`` already (the operator's Jobs carry such documents, and buckets
    has not heard of the attempt yet). ``timeout`` replaces the Work's own. Without
    ``buckets`` (it did not answer when the runner started), ``reconnect`` is
    tried again once the Work has ended, so that an outage at the start does
    not lose an outcome that could be recorded at the end.
    """
    document = WorkDocument.model_validate(work.model_dump(mode="json"))
    document.attempt = max(document.attempt, 1)
    needs_start_record = not withdrawn
    document.status = "running"
    document.start = time.time()
    document.stop = None
    if needs_start_record:
        _record(buckets, document, "start")
    logger.info(
        "work %s (pipeline %s, attempt %d) starts",
        document.id or "without id",
        document.pipeline,
        document.attempt,
    )

    try:
        outcome = execute(document, timeout=timeout, grace=grace, cancel=cancel, echo=echo)
    except Exception as error:  # the runner itself failed (no temp space, fork refused, ...)
        logger.exception("the runner could not run work %s", document.id)
        outcome = Outcome(
            status="failure",
            reason="Error",
            message=f"the runner could not run the work: {type(error).__name__}: {error}",
            start=document.start,
            stop=time.time(),
        )

    document.status = outcome.status
    document.start = outcome.start
    document.stop = outcome.stop
    document.results = outcome.results
    document.products = outcome.products
    document.plots = outcome.plots
    if buckets is None and reconnect is not None and document.id:
        buckets = reconnect()
    recorded = _record(buckets, document, "outcome")
    summary = summarize(document, outcome, recorded)
    write_termination_log(summary, termination_log)
    return Attempt(work=document, outcome=outcome, recorded=recorded, summary=summary)


def _claim(buckets: Buckets, filters: Filters) -> WorkDocument | None:
    """Withdraw one Work; a record buckets handed out that is not a valid Work is failed."""
    record = buckets.withdraw(**filters.arguments())
    if record is None:
        return None
    try:
        return WorkDocument.model_validate(record)
    except ValidationError as error:
        logger.error(
            "buckets handed out work %s, which is not a valid Work: %s", record.get("id"), error
        )
        if record.get("id"):
            try:
                buckets.update([{**record, "status": "failure", "stop": time.time()}])
            except BucketsError as update_error:
                logger.error("could not mark work %s as failed: %s", record.get("id"), update_error)
        raise InvalidWork(
            f"buckets handed out an invalid work {record.get('id')}: {error}"
        ) from None


@dataclass
class Tally:
    """What a ``serve`` loop did."""

    succeeded: int = 0
    failed: int = 0
    idle: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILURE if self.failed or self.errors else EXIT_SUCCESS


def serve(
    buckets: Buckets,
    filters: Filters,
    *,
    lives: int | None = 1,
    sleep: float = 30.0,
    stop: threading.Event | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    echo: bool = False,
    termination_log: Path | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    on_idle: Callable[[], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> Tally:
    """Withdraw and run Works until ``lives`` withdraws were made (None: until ``stop`` is set).

    Each withdraw is a life, whether it found a Work or not. After a withdraw
    that found nothing, or failed, the loop sleeps ``sleep`` seconds (cut short
    by ``stop``); after a Work it goes straight to the next withdraw.
    """
    stop = stop or threading.Event()
    tally = Tally()
    remaining = lives
    while not stop.is_set() and (remaining is None or remaining > 0):
        if remaining is not None:
            remaining -= 1
        try:
            work = _claim(buckets, filters)
        except (BucketsError, InvalidWork) as error:
            tally.errors.append(str(error))
            if on_error:
                on_error(error)
            work = None
        else:
            if work is None:
                tally.idle += 1
                if on_idle:
                    on_idle()
        if work is not None:
            done = attempt(
                work,
                buckets=buckets,
                withdrawn=True,
                timeout=timeout,
                grace=grace,
                cancel=cancel,
                echo=echo,
                termination_log=termination_log,
            )
            if done.outcome.succeeded:
                tally.succeeded += 1
            else:
                tally.failed += 1
            if on_attempt:
                on_attempt(done)
            continue
        if remaining is None or remaining > 0:
            stop.wait(sleep)
    return tally
