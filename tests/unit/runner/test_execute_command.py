"""execute() on a Work's command: captured output, the results file, failures and the timeout."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from unit.runner.process_checks import alive, gone_within, read_pid
from workflow import RESULTS_LIMIT_BYTES
from workflow.definitions.work import WorkDocument
from workflow.runner.execute import OUTPUT_LIMIT_BYTES, RESULTS_PATH_VARIABLE, execute


def work(*command: str, **fields) -> WorkDocument:
    return WorkDocument(pipeline="p", site="local", user="u", command=list(command), **fields)


def python(code: str) -> WorkDocument:
    return work(sys.executable, "-c", code)


def test_a_command_that_reports_nothing_gets_its_output_as_results() -> None:
    outcome = execute(work("sh", "-c", "echo one; echo two; echo err >&2"))
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("success", "Completed", 0)
    assert outcome.results == {
        "args": ["sh", "-c", "echo one; echo two; echo err >&2"],
        "stdout": "one\ntwo\n",
        "stderr": "err\n",
        "returncode": 0,
    }


def test_a_failing_command_fails_with_its_exit_code_and_last_error_line() -> None:
    outcome = execute(work("sh", "-c", "echo first >&2; echo disk full >&2; exit 3"))
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("failure", "Error", 3)
    assert outcome.message == (
        "command `sh -c 'echo first >&2; echo disk full >&2; exit 3'` exited with code 3: disk full"
    )
    assert outcome.results["returncode"] == 3


def test_a_single_string_with_spaces_runs_through_the_shell() -> None:
    outcome = execute(work("echo shell | tr a-z A-Z"))
    assert outcome.results["stdout"] == "SHELL\n"


def test_a_command_that_does_not_exist_fails_as_command_not_found() -> None:
    outcome = execute(work("no-such-program-anywhere", "--flag"))
    assert (outcome.status, outcome.reason) == ("failure", "CommandNotFound")
    assert "'no-such-program-anywhere' was not found" in outcome.message


def test_a_file_that_is_not_executable_fails_as_command_not_found(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    outcome = execute(work(str(script)))
    assert outcome.reason == "CommandNotFound" and "could not be started" in outcome.message


def test_output_is_bounded_to_its_last_64_kib() -> None:
    outcome = execute(python("import sys\nfor i in range(20000): print(f'line {i:06d}')"))
    first, *kept = outcome.results["stdout"].splitlines()
    assert first.startswith("[") and first.endswith(" earlier bytes were not kept]")
    assert kept[0].startswith("line ") and len(kept[0]) == len("line 000000")
    assert kept[-1] == "line 019999"
    assert sum(len(line) + 1 for line in kept) <= OUTPUT_LIMIT_BYTES
    assert int(first[1:].split()[0]) + sum(len(line) + 1 for line in kept) == 20000 * 12


# --------------------------------------------------------------------------- results file
def write_results(envelope: object) -> WorkDocument:
    code = (
        "import json, os\n"
        f"json.dump({envelope!r}, open(os.environ[{RESULTS_PATH_VARIABLE!r}], 'w'))"
    )
    return python(code)


def test_a_command_reports_results_products_and_plots_through_the_results_file() -> None:
    outcome = execute(
        write_results({"results": {"rows": 12}, "products": ["/d/a.h5"], "plots": ["/p/a.png"]})
    )
    assert outcome.succeeded
    assert (outcome.results, outcome.products, outcome.plots) == (
        {"rows": 12},
        ["/d/a.h5"],
        ["/p/a.png"],
    )


def test_every_key_of_the_results_file_is_optional() -> None:
    outcome = execute(write_results({"products": ["/d/only.h5"]}))
    assert (outcome.results, outcome.products) == (None, ["/d/only.h5"])


def test_the_results_file_counts_even_when_the_command_fails() -> None:
    outcome = execute(
        work(
            "sh", "-c", f'echo \'{{"results": {{"done": 1}}}}\' > ${RESULTS_PATH_VARIABLE}; exit 4'
        )
    )
    assert (outcome.status, outcome.exit_code, outcome.results) == ("failure", 4, {"done": 1})


def test_a_results_file_that_is_not_json_fails_as_not_serializable() -> None:
    outcome = execute(work("sh", "-c", f"echo 'rows=12' > ${RESULTS_PATH_VARIABLE}"))
    assert (outcome.status, outcome.reason) == ("failure", "ResultsNotSerializable")
    assert "not valid JSON" in outcome.message


def test_a_results_file_with_nan_fails_as_not_serializable() -> None:
    outcome = execute(
        work("sh", "-c", f'echo \'{{"results": {{"x": NaN}}}}\' > ${RESULTS_PATH_VARIABLE}')
    )
    assert outcome.reason == "ResultsNotSerializable"


@pytest.mark.parametrize(
    ("envelope", "words"),
    [
        ({"rows": 12}, "unknown keys ['rows']"),
        ([1, 2], "wrote list to its results file"),
        ({"results": [1]}, "results in the results file"),
        ({"plots": "a.png"}, "plots in the results file"),
    ],
)
def test_a_results_file_of_the_wrong_shape_fails_saying_why(envelope: object, words: str) -> None:
    outcome = execute(write_results(envelope))
    assert outcome.reason == "InvalidResults" and words in outcome.message


def test_results_over_4_mib_from_the_results_file_fail_naming_their_size() -> None:
    code = (
        "import json, os\n"
        f"json.dump({{'results': {{'blob': 'x' * {RESULTS_LIMIT_BYTES}}}}}, "
        f"open(os.environ[{RESULTS_PATH_VARIABLE!r}], 'w'))"
    )
    outcome = execute(python(code))
    size = RESULTS_LIMIT_BYTES + len('{"blob":""}')
    assert (outcome.status, outcome.reason, outcome.results) == ("failure", "ResultsTooLarge", None)
    assert f"are {size} bytes of JSON" in outcome.message


# --------------------------------------------------------------------------- deadline
def test_the_timeout_stops_the_command_at_the_deadline(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    outcome = execute(work("sh", "-c", f"echo $$ > {marker}; exec sleep 60"), timeout=1)
    elapsed = time.monotonic() - started
    assert (outcome.status, outcome.reason, outcome.exit_code) == (
        "failure",
        "DeadlineExceeded",
        128 + 15,
    )
    assert outcome.message == (
        f"command `sh -c 'echo $$ > {marker}; exec sleep 60'` did not finish within its "
        "timeout of 1 s and was stopped"
    )
    assert 1.0 <= elapsed < 4.0
    assert not alive(read_pid(marker))


def test_the_whole_process_group_is_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    outcome = execute(work("sh", "-c", f"sleep 60 & echo $! > {marker}; wait"), timeout=1)
    assert outcome.reason == "DeadlineExceeded"
    assert gone_within(read_pid(marker))


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    outcome = execute(
        work("sh", "-c", f"trap '' TERM; echo $$ > {marker}; while true; do sleep 0.1; done"),
        timeout=1,
        grace=0.5,
    )
    elapsed = time.monotonic() - started
    assert outcome.reason == "DeadlineExceeded" and outcome.exit_code == 128 + 9
    assert 1.5 <= elapsed < 5.0
    assert not alive(read_pid(marker))


def test_what_a_finished_command_left_running_is_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    outcome = execute(work("sh", "-c", f"sleep 60 > /dev/null 2>&1 & echo $! > {marker}"))
    assert outcome.succeeded
    assert gone_within(read_pid(marker))


def test_cancelling_stops_the_command_as_interrupted() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    outcome = execute(work("sleep", "60"), cancel=cancel)
    assert (outcome.status, outcome.reason) == ("failure", "Interrupted")
    assert time.monotonic() - started < 4.0


def test_echo_copies_the_output_while_capturing_it(capfd: pytest.CaptureFixture[str]) -> None:
    outcome = execute(work("sh", "-c", "echo to-out; echo to-err >&2"), echo=True)
    captured = capfd.readouterr()
    assert "to-out" in captured.out and "to-err" in captured.err
    assert outcome.results["stdout"] == "to-out\n"


def test_the_results_path_is_private_to_each_run() -> None:
    first = execute(work("sh", "-c", f"echo ${RESULTS_PATH_VARIABLE}"))
    second = execute(work("sh", "-c", f"echo ${RESULTS_PATH_VARIABLE}"))
    assert first.results["stdout"] != second.results["stdout"]
    assert not Path(first.results["stdout"].strip()).parent.exists()


def test_results_are_json_ready() -> None:
    outcome = execute(work("echo", "é ü"))
    assert json.loads(json.dumps(outcome.results))["stdout"] == "é ü\n"
