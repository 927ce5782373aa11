"""The layers hold and the typed packages type-check, so CI (which runs pytest) keeps them.

The import-linter contracts in ``.importlinter`` say which package may import
which (definitions below http below the runner, the operator and buckets; the
operator's pure modules free of kubernetes, httpx, psycopg and kopf); mypy's
settings in ``pyproject.toml`` make it strict on definitions, http and controller.
Both come with the test extras.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def test_imports_keep_the_layer_contracts():
    result = subprocess.run(
        [tool("lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_errors():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
