"""The README states the limits on results as the code applies them."""

from __future__ import annotations

from pathlib import Path

from workflow import RESULTS_LIMIT_BYTES
from workflow.controller.settings import OperatorSettings

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_the_readme_gives_both_results_limits_and_what_happens_past_each() -> None:
    cap = OperatorSettings.model_fields["results_cap_bytes"].default
    text = " ".join(README.split())
    assert f"up to {cap // 1024} KiB of JSON" in text
    assert f"{RESULTS_LIMIT_BYTES // 1024 // 1024} MiB, {RESULTS_LIMIT_BYTES:,}" in text
    assert "kept whole in buckets only" in text
    assert f"over {RESULTS_LIMIT_BYTES // 1024 // 1024} MiB fail the attempt" in text
    assert "`ResultsTooLarge`" in text
