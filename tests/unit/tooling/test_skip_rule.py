"""One rule for skips (``fixtures.skipping``): under CI a skip fails, unless outside this machine.

Each case runs a small pytest session (``pytester``) with the rule's plugin
loaded as the suite loads it, and reads the outcome of each test.
"""

from __future__ import annotations

import pytest

from fixtures.skipping import in_ci

CASES = """
import pytest
from fixtures.skipping import skip

@pytest.fixture
def missing_service():
    skip("no such service on this machine")

def test_skipped_in_the_test():
    pytest.skip("plain pytest.skip")

def test_skipped_by_a_fixture(missing_service):
    pass

@pytest.mark.skipif(True, reason="a skipif mark")
def test_skipped_by_a_mark():
    pass

def test_skipped_for_a_reason_outside_this_machine():
    skip("needs Docker and kind", outside=True)

def test_that_runs():
    pass
"""


def outcomes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> dict:
    """The outcome of each case, in a pytest session run here with the rule's plugin."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest('pytest_plugins = ["fixtures.skipping"]\n')
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    found = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome != "passed":
            found.setdefault(name, report.outcome)
    return found


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE", "on"])
def test_under_ci_every_skip_fails_unless_its_reason_is_outside_this_machine(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    found = outcomes(pytester, monkeypatch, ci)
    assert found == {
        "test_skipped_in_the_test": "failed",
        "test_skipped_by_a_fixture": "failed",
        "test_skipped_by_a_mark": "failed",
        "test_skipped_for_a_reason_outside_this_machine": "skipped",
        "test_that_runs": "passed",
    }


@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_outside_ci_a_skip_is_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    found = outcomes(pytester, monkeypatch, ci)
    assert found.pop("test_that_runs") == "passed", found
    assert set(found.values()) == {"skipped"}, found


def test_ci_is_on_for_any_value_but_nothing_0_false_and_no() -> None:
    assert [in_ci({"CI": value}) for value in ("true", "1", "yes", "True")] == [True] * 4
    assert [in_ci({"CI": value}) for value in ("", "0", "false", "No")] == [False] * 4
    assert in_ci({}) is False
