"""The benchmarks under bench/ still run: each in its quick mode, a smoke run of seconds.

Benchmarks are not tests and their figures are not checked here (they
depend on the machine); what is checked is that every benchmark completes
against the real services, writes its JSON report with figures, and never
hands out a work twice. Results go to a temporary folder; bench/README.md
and bench/results/ are left alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def run_quick(names: list[str], results: Path, timeout: float) -> dict[str, dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            ",".join(names),
            "--results",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"python -m bench --quick failed:\n{done.stderr[-4000:]}"
    reports = {}
    for name in names:
        report = json.loads((results / f"{name}.json").read_text())
        assert report["quick"] is True and report["figures"], name
        assert all(figure["value"] is not None for figure in report["figures"]), name
        reports[name] = report
    return reports


def test_buckets_benchmarks_complete_and_never_hand_out_a_work_twice(tmp_path: Path) -> None:
    names = ["buckets_deposit", "buckets_withdraw", "client_compat", "buckets_scale"]
    reports = run_quick(names, tmp_path, timeout=400)
    duplicates = [
        f for f in reports["buckets_withdraw"]["figures"] if f["name"].endswith("duplicates")
    ]
    assert duplicates and all(figure["value"] == 0 for figure in duplicates)
    ceilings = [f for f in reports["buckets_withdraw"]["figures"] if f["ceiling"] is not None]
    assert ceilings and all(figure["ceiling"] > 0 for figure in ceilings)


@pytest.mark.cluster
def test_operator_benchmarks_complete_on_the_local_control_plane(tmp_path: Path) -> None:
    reports = run_quick(
        ["operator_throughput", "operator_scale", "buckets_running"], tmp_path, timeout=600
    )
    figures = {f["name"]: f for f in reports["operator_throughput"]["figures"]}
    assert figures["N=5: Works → Jobs created"]["ceiling"] > 0
    assert figures["N=5: apiserver writes per Work"]["value"] > 0
    running = reports["buckets_running"]
    assert running["details"]["works"] == 3 and not running["details"]["never_shown_running"]


@pytest.mark.cluster
@pytest.mark.realnode
def test_the_real_node_benchmark_completes_with_its_ceiling(tmp_path: Path) -> None:
    reports = run_quick(["realnode_throughput"], tmp_path, timeout=600)
    [figure] = reports["realnode_throughput"]["figures"]
    assert figure["name"] == "N=3: Works → success (real node)"
    assert figure["value"] > 0 and figure["ceiling"] > 0
