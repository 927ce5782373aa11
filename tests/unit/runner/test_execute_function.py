"""execute() on a Work's function: results, failures, limits and the timeout."""

from __future__ import annotations

import time
from pathlib import Path

from unit.runner.process_checks import alive, gone_within, read_pid
from workflow import RESULTS_LIMIT_BYTES
from workflow.definitions.work import WorkDocument
from workflow.runner.execute import execute

SAMPLES = "unit.runner.runner_samples"


def work(function: str, **fields) -> WorkDocument:
    return WorkDocument(pipeline="p", site="local", user="u", function=function, **fields)


def test_a_function_returning_a_dict_succeeds_with_those_results() -> None:
    outcome = execute(work("workflow.examples.functions.mean", parameters={"values": [1, 2, 6]}))
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("success", "Completed", 0)
    assert outcome.results == {"mean": 3.0, "stdev": 2.6457513110645907, "count": 3}
    assert outcome.products is None and outcome.plots is None
    assert outcome.start <= outcome.stop


def test_a_function_without_parameters_is_called_with_none() -> None:
    assert execute(work(f"{SAMPLES}.no_parameters")).results == {"called": True}


def test_a_tuple_gives_results_products_and_plots() -> None:
    outcome = execute(work(f"{SAMPLES}.returns_three", parameters={"a": 5}))
    assert outcome.succeeded
    assert (outcome.results, outcome.products, outcome.plots) == (
        {"a": 5},
        ["/data/5.h5"],
        ["/plots/5.png"],
    )


def test_a_shorter_tuple_leaves_the_rest_empty() -> None:
    outcome = execute(work(f"{SAMPLES}.returns_results_and_products"))
    assert (outcome.results, outcome.products, outcome.plots) == ({"n": 1}, ["/data/one.csv"], None)


def test_the_example_histogram_writes_its_product_and_plot(tmp_path: Path) -> None:
    outcome = execute(
        work(
            "workflow.examples.functions.histogram",
            parameters={"values": [1, 2, 2, 3], "bins": 2, "folder": str(tmp_path)},
        )
    )
    assert outcome.results["counts"] == [1, 3]
    assert all(Path(item).is_file() for item in outcome.products + outcome.plots)


def test_a_function_that_raises_fails_with_its_error() -> None:
    outcome = execute(work(f"{SAMPLES}.raises"))
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("failure", "Error", 1)
    assert outcome.message == f"{SAMPLES}.raises raised ValueError: the input was negative"


def test_a_module_that_does_not_exist_fails_naming_the_path() -> None:
    outcome = execute(work("no_such_package.module.function"))
    assert (outcome.status, outcome.reason) == ("failure", "ImportError")
    assert "'no_such_package.module.function' could not be imported" in outcome.message
    assert "no_such_package" in outcome.message


def test_a_module_that_breaks_on_import_fails_with_its_error() -> None:
    outcome = execute(work("unit.runner.runner_broken_module.anything"))
    assert outcome.reason == "ImportError"
    assert "RuntimeError: this module is broken on purpose" in outcome.message


def test_a_missing_function_fails_naming_module_and_attribute() -> None:
    outcome = execute(work("workflow.examples.functions.median"))
    assert outcome.reason == "FunctionNotFound"
    assert "'workflow.examples.functions' has no attribute 'median'" in outcome.message


def test_a_path_without_a_module_fails_with_a_sentence() -> None:
    outcome = execute(work("mean"))
    assert outcome.reason == "FunctionNotFound"
    assert "not a dotted path" in outcome.message


def test_something_that_is_not_callable_fails() -> None:
    outcome = execute(work(f"{SAMPLES}.CONSTANT"))
    assert outcome.reason == "FunctionNotFound"
    assert "is a int, not a function" in outcome.message


def test_results_that_json_cannot_hold_fail_as_not_serializable() -> None:
    outcome = execute(work(f"{SAMPLES}.not_serializable"))
    assert (outcome.status, outcome.reason) == ("failure", "ResultsNotSerializable")
    assert "object is not JSON serializable" in outcome.message


def test_nan_in_results_fails_as_not_serializable() -> None:
    assert execute(work(f"{SAMPLES}.not_a_number")).reason == "ResultsNotSerializable"


def test_results_over_4_mib_fail_naming_their_size_and_are_not_kept() -> None:
    outcome = execute(work(f"{SAMPLES}.too_large"))
    size = RESULTS_LIMIT_BYTES + len('{"blob":""}')
    assert (outcome.status, outcome.reason) == ("failure", "ResultsTooLarge")
    assert (
        f"are {size} bytes of JSON, over the limit of {RESULTS_LIMIT_BYTES} bytes"
        in outcome.message
    )
    assert outcome.results is None and outcome.results_bytes == size


def test_results_just_under_the_limit_are_kept() -> None:
    outcome = execute(work(f"{SAMPLES}.just_under_the_limit"))
    assert outcome.succeeded and outcome.results_bytes <= RESULTS_LIMIT_BYTES


def test_returning_something_other_than_results_fails_naming_the_type() -> None:
    outcome = execute(work(f"{SAMPLES}.returns_a_number"))
    assert outcome.reason == "InvalidResults" and "not int" in outcome.message


def test_a_tuple_with_a_wrong_item_fails() -> None:
    outcome = execute(work(f"{SAMPLES}.returns_a_bad_tuple"))
    assert (
        outcome.reason == "InvalidResults"
        and "products must be a list of strings" in outcome.message
    )


def test_a_process_that_dies_without_reporting_fails_with_its_exit_code() -> None:
    outcome = execute(work(f"{SAMPLES}.exits_without_reporting"))
    assert (outcome.reason, outcome.exit_code) == ("Error", 9)
    assert "ended with exit code 9 before reporting" in outcome.message


def test_the_timeout_stops_the_function_at_the_deadline(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    outcome = execute(
        work(f"{SAMPLES}.nap", parameters={"seconds": 60, "marker": str(marker)}), timeout=1
    )
    elapsed = time.monotonic() - started
    assert (outcome.status, outcome.reason) == ("failure", "DeadlineExceeded")
    assert outcome.message.endswith("did not finish within its timeout of 1 s and was stopped")
    assert 1.0 <= elapsed < 5.0
    assert not alive(read_pid(marker))


def test_the_works_own_timeout_applies_by_default(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    outcome = execute(
        work(f"{SAMPLES}.nap", parameters={"seconds": 60, "marker": str(marker)}, timeout=1)
    )
    assert outcome.reason == "DeadlineExceeded" and time.monotonic() - started < 5.0


def test_what_the_function_started_is_stopped_with_it(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    outcome = execute(
        work(f"{SAMPLES}.nap_with_child", parameters={"seconds": 60, "marker": str(marker)}),
        timeout=1,
    )
    assert outcome.reason == "DeadlineExceeded"
    assert gone_within(read_pid(marker))


def test_a_function_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    outcome = execute(
        work(f"{SAMPLES}.stubborn_nap", parameters={"seconds": 60, "marker": str(marker)}),
        timeout=1,
        grace=0.5,
    )
    elapsed = time.monotonic() - started
    assert outcome.reason == "DeadlineExceeded" and outcome.exit_code == 128 + 9
    assert 1.5 <= elapsed < 6.0
    assert not alive(read_pid(marker))


def test_a_work_with_nothing_to_run_fails_with_a_sentence() -> None:
    outcome = execute(WorkDocument(pipeline="p", site="s", user="u"))
    assert (outcome.reason, outcome.message) == (
        "NothingToRun",
        "the work has neither a function nor a command to run",
    )
