"""``workflow run``: perform Works, withdrawn from buckets or given directly.

Two ways to use it:

- ``workflow run PIPELINE... [filters] [--lives N | --forever] [--sleep S]``
  withdraws queued Works of those pipelines from buckets, runs each and
  records the outcome in buckets;
- ``workflow run --work FILE`` (or ``-`` for stdin, or ``--work-env NAME`` for
  a JSON document in an environment variable, as the operator's Jobs do) runs
  one given Work and, when it has an id, records the outcome in buckets.

buckets is found through the workspace or ``WORKFLOW_HTTP_BASEURL``; the
token comes from ``WORKFLOW_HTTP_TOKEN`` and its aliases. Exit status: 0 when
every Work run succeeded, 1 when one failed, 2 when the runner could not run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from workflow.definitions.work import MAX_TIMEOUT
from workflow.http.buckets import Buckets
from workflow.http.context import HTTPContext
from workflow.http.errors import BucketsError
from workflow.runner.execute import DEFAULT_GRACE, hide_from_children
from workflow.runner.lifecycle import (
    EXIT_UNUSABLE,
    Attempt,
    Filters,
    InvalidWork,
    attempt,
    parse_work,
    serve,
    termination_log_path,
    write_termination_log,
)

__all__ = ["run"]

#: Environment variable read for a Work when no pipeline and no --work is given.
WORK_VARIABLE = "WORKFLOW_WORK"
#: Longest results shown on the console, in characters.
_SHOWN_RESULTS = 500


class RunnerError(click.ClickException):
    """The runner cannot run at all (exit status 2)."""

    exit_code = EXIT_UNUSABLE


@contextmanager
def _stopping_on_signals(
    stop: threading.Event, cancel: threading.Event, console: Console
) -> Iterator[None]:
    """SIGTERM or SIGINT: stop the running Work (recorded as Interrupted) and run no more."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _: Any) -> None:
        if not stop.is_set():
            console.print(f"[yellow]received {signal.Signals(signum).name}: stopping[/]")
        stop.set()
        cancel.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _logging_to(console: Console, verbose: int) -> Iterator[None]:
    """Show the package's log records on the console for the duration of the command."""
    package = logging.getLogger("workflow")
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)


def _show(done: Attempt, console: Console, as_json: IO[str] | None) -> None:
    outcome, work = done.outcome, done.work
    name = f"work {work.id}" if work.id else "work"
    where = f"{name} (pipeline {work.pipeline}, attempt {work.attempt})"
    if outcome.succeeded:
        console.print(
            f"[green]✔[/] {escape(where)} succeeded in {outcome.seconds:.1f} s", highlight=False
        )
    else:
        console.print(
            f"[red]✘[/] {escape(where)} failed ({outcome.reason}) after {outcome.seconds:.1f} s: "
            f"{escape(outcome.message)}",
            highlight=False,
        )
    if outcome.results is not None:
        text = json.dumps(outcome.results, ensure_ascii=False)
        if len(text) > _SHOWN_RESULTS:
            text = text[: _SHOWN_RESULTS - 1] + "…"
        console.print(f"  results: {escape(text)}", highlight=False)
    for label, items in (("products", outcome.products), ("plots", outcome.plots)):
        if items:
            console.print(f"  {label}: {escape(', '.join(items))}", highlight=False)
    if done.recorded is False:
        console.print("  [yellow]the outcome could not be recorded in buckets[/]")
    if as_json is not None:
        as_json.write(json.dumps(done.summary, ensure_ascii=False) + "\n")
        as_json.flush()


def _connect(required: bool, console: Console) -> Buckets | None:
    """The buckets client, or None (with a warning) when ``required`` is False and there is none."""
    try:
        return HTTPContext().buckets
    except (ValidationError, BucketsError) as error:
        detail = _first_problem(error)
        if required:
            raise RunnerError(f"cannot reach buckets: {detail}") from None
        console.print(
            f"[yellow]buckets is not available, so the outcome is not recorded there: "
            f"{escape(detail)}[/]",
            highlight=False,
        )
        return None


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            str(problem["msg"]).removeprefix("Value error, ") for problem in error.errors()
        )
    return str(error)


def _given_work(work_file: IO[str] | None, work_env: str | None) -> tuple[str, str] | None:
    """(text, source) of the Work given on the command line or in the environment."""
    if work_file is not None:
        name = "standard input" if work_file.name == "<stdin>" else work_file.name
        return work_file.read(), name
    variable = work_env or (WORK_VARIABLE if os.environ.get(WORK_VARIABLE) else None)
    if variable is None:
        return None
    if not os.environ.get(variable):
        raise RunnerError(
            f"environment variable {variable} is not set or empty; it should hold a Work"
        )
    return os.environ[variable], f"environment variable {variable}"


@click.command("run", short_help="Run Works: withdrawn from buckets, or one given Work.")
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("-s", "--site", help="Only Works for this site.")
@click.option("--priority", type=click.IntRange(1, 5), help="Only Works of this priority.")
@click.option("-u", "--user", help="Only Works of this user.")
@click.option("-t", "--tag", "tags", multiple=True, help="Only Works with this tag (repeatable).")
@click.option(
    "-e",
    "--event",
    "events",
    type=int,
    multiple=True,
    help="Only Works about this event (repeatable).",
)
@click.option(
    "-p", "--parent", "parents", multiple=True, help="Only Works of this parent (repeatable)."
)
@click.option(
    "-l",
    "--lives",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Withdraws to make, whether or not they find a Work.",
)
@click.option("--forever", is_flag=True, help="Withdraw until stopped (SIGTERM or Ctrl-C).")
@click.option(
    "--sleep",
    type=click.FloatRange(min=0, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait after a withdraw that found nothing.",
)
@click.option(
    "-w",
    "--work",
    "work_file",
    type=click.File("r"),
    help="Run this Work (JSON or YAML file; - reads standard input) instead of withdrawing.",
)
@click.option(
    "--work-env",
    metavar="NAME",
    help=f"Run the Work whose JSON is in environment variable NAME (default {WORK_VARIABLE}, "
    "read when neither a pipeline nor --work is given).",
)
@click.option(
    "--timeout",
    type=click.IntRange(1, MAX_TIMEOUT),
    help="Seconds each Work may run, instead of its own timeout.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0, max=600),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when a Work is stopped.",
)
@click.option(
    "--no-update", is_flag=True, help="Do not record outcomes in buckets (given Works only)."
)
@click.option(
    "--termination-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write each attempt's JSON summary here (default: $WORKFLOW_TERMINATION_LOG, "
    "else /dev/termination-log when writable).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print each attempt's summary as a JSON line."
)
@click.option("-v", "--verbose", count=True, help="Show more log records (-vv for debugging).")
def run(
    pipelines: tuple[str, ...],
    site: str | None,
    priority: int | None,
    user: str | None,
    tags: tuple[str, ...],
    events: tuple[int, ...],
    parents: tuple[str, ...],
    lives: int,
    forever: bool,
    sleep: float,
    work_file: IO[str] | None,
    work_env: str | None,
    timeout: int | None,
    grace: float,
    no_update: bool,
    termination_log: Path | None,
    as_json: bool,
    verbose: int,
) -> None:
    """Run Works from buckets PIPELINEs, or the one Work given with --work/--work-env.

    Each Work's function or command runs within its timeout; its status,
    results, products, plots and times are recorded in buckets, and a short
    JSON summary is written to the termination log.
    """
    console = Console(stderr=True, highlight=False)
    # The Work's processes get no token in their environment, nor may they read ours.
    hide_from_children()
    stream = sys.stdout if as_json else None
    summary_path = termination_log or termination_log_path()
    if pipelines and (work_file is not None or work_env):
        raise click.UsageError(
            "give either PIPELINEs to withdraw from or --work/--work-env, not both"
        )
    stop, cancel = threading.Event(), threading.Event()

    with _logging_to(console, verbose), _stopping_on_signals(stop, cancel, console):
        if not pipelines:
            given = _given_work(work_file, work_env)
            if given is None:
                raise click.UsageError(
                    "nothing to run: give PIPELINEs to withdraw from, or a Work with --work "
                    f"or --work-env (or in {WORK_VARIABLE})"
                )
            if forever:
                raise click.UsageError("--forever only applies when withdrawing from PIPELINEs")
            text, source = given
            try:
                work = parse_work(text, source)
            except InvalidWork as error:
                write_termination_log(
                    {"status": "failure", "reason": "InvalidWork", "message": str(error)[:2000]},
                    summary_path,
                )
                raise RunnerError(str(error)) from None
            recording = not no_update and bool(work.id)
            buckets = _connect(False, console) if recording else None
            done = attempt(
                work,
                buckets=buckets,
                # buckets away now may be back when the Work ends: try again then.
                reconnect=(lambda: _connect(False, console)) if recording else None,
                timeout=timeout,
                grace=grace,
                cancel=cancel,
                echo=not as_json,
                termination_log=summary_path,
            )
            _show(done, console, stream)
            click.get_current_context().exit(done.exit_code)

        if no_update:
            raise click.UsageError(
                "--no-update only applies to a given Work; withdrawn Works are always recorded"
            )
        buckets = _connect(True, console)
        assert buckets is not None
        filters = Filters(
            pipelines=pipelines,
            site=site,
            priority=priority,
            user=user,
            tags=tags,
            events=events,
            parents=parents,
        )
        console.print(
            f"withdrawing from {', '.join(pipelines)} at {buckets.baseurl} "
            f"({'until stopped' if forever else f'{lives} withdraw' + ('s' if lives > 1 else '')})",
            highlight=False,
        )
        tally = serve(
            buckets,
            filters,
            lives=None if forever else lives,
            sleep=sleep,
            stop=stop,
            cancel=cancel,
            timeout=timeout,
            grace=grace,
            echo=not as_json,
            termination_log=summary_path,
            on_attempt=lambda done: _show(done, console, stream),
            on_idle=lambda: console.print(
                f"no queued work in {', '.join(pipelines)} matches the filters", highlight=False
            ),
            on_error=lambda error: console.print(f"[red]error:[/] {escape(str(error))}"),
        )
        buckets.close()
        if tally.succeeded + tally.failed > 1 or tally.errors:
            console.print(
                f"{tally.succeeded} succeeded, {tally.failed} failed, "
                f"{tally.idle} empty withdraws, {len(tally.errors)} errors",
                highlight=False,
            )
        click.get_current_context().exit(tally.exit_code)
