"""The demo prints command output (the summary table) as it is, whatever the console width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import demo

TABLE = (
    "NAME            PHASE     ATTEMPT   PIPELINE     AGE   MESSAGE\n"
    "mean-function   success   1         statistics   9s    attempt 1 of 3 succeeded [ok]\n"
    "echo-command    success   1         statistics   9s    attempt 1 of 3 succeeded\n"
)


def test_the_summary_table_keeps_its_lines_on_a_narrow_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=40, color_system=None))
    demo.show(TABLE)
    demo.console.print("next line")
    assert out.getvalue() == TABLE + "next line\n"
