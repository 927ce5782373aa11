"""The buckets token stays with the runner: a Work's command or function never sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workflow.definitions.work import WorkDocument
from workflow.runner.execute import child_environment, execute

TOKEN = "tok-runner-only-5d1c"


def work(**fields) -> WorkDocument:
    return WorkDocument(pipeline="p", site="local", user="u", timeout=30, **fields)


@pytest.fixture
def token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_HTTP_TOKEN", TOKEN)
    monkeypatch.setenv("WORKFLOW_TOKEN", "tok-second-name")
    monkeypatch.setenv("WORK_SECRET_COPY", TOKEN)  # the same value under any other name
    monkeypatch.setenv("GITHUB_TOKEN", "the-works-own-github-token")
    monkeypatch.setenv("KEPT", "yes")


def test_a_command_does_not_see_the_token_variables(token_in_environment) -> None:
    outcome = execute(work(command=["env"]))
    assert outcome.succeeded, outcome.message
    seen = outcome.results["stdout"]
    assert TOKEN not in seen and "WORKFLOW_HTTP_TOKEN" not in seen
    assert "WORKFLOW_TOKEN" not in seen and "WORK_SECRET_COPY" not in seen
    assert "KEPT=yes" in seen
    assert "GITHUB_TOKEN=the-works-own-github-token" in seen


def test_a_function_does_not_see_the_token_variables(token_in_environment) -> None:
    outcome = execute(work(function="unit.runner.runner_samples.environment"))
    assert outcome.succeeded, outcome.message
    environ = outcome.results["environ"]
    assert TOKEN not in environ.values()
    assert not {"WORKFLOW_HTTP_TOKEN", "WORKFLOW_TOKEN", "WORK_SECRET_COPY"} & set(environ)
    assert environ["KEPT"] == "yes"


def test_a_github_token_that_is_the_buckets_token_is_dropped_too() -> None:
    environ = {"GITHUB_TOKEN": TOKEN, "PATH": "/bin"}
    assert child_environment(environ) == {"PATH": "/bin"}
    assert child_environment({"GITHUB_TOKEN": "", "PATH": "/bin"}) == {
        "GITHUB_TOKEN": "",
        "PATH": "/bin",
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_DUMPABLE is Linux's")
def test_the_runner_makes_its_environ_unreadable_to_its_children() -> None:
    # In a child of ours, so the test process keeps its own flag. A process that is
    # not dumpable has its /proc files owned by root: a same-user Work cannot read them.
    script = (
        "import ctypes, json;"
        "from workflow.runner.execute import hide_from_children;"
        "prctl = ctypes.CDLL(None).prctl;"
        "before = prctl(3, 0, 0, 0, 0);"  # PR_GET_DUMPABLE
        "ok = hide_from_children();"
        "print(json.dumps([before, ok, prctl(3, 0, 0, 0, 0)]))"
    )
    reply = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    assert json.loads(reply.stdout) == [1, True, 0]
