"""Keep the values table of charts/workflow/README.md in step with values.yaml.

values.yaml documents each key with a ``# --`` comment just above it (the
helm-docs convention). A documented key whose children carry no ``# --``
comment of their own is one row, its default shown as JSON (a pass-through
object like ``podSecurityContext``). This script rewrites the table between
the README's ``<!-- values:begin -->`` and ``<!-- values:end -->`` markers;
``--check`` only says whether it is current (the tests use ``rows``).

    python hack/chart_readme.py           # rewrite the table
    python hack/chart_readme.py --check   # exit 1 if the README is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "workflow"
BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?:\s|$)")


def documented_keys(text: str) -> dict[str, str]:
    """Every key with a ``# --`` comment, by dotted path, with its description."""
    keys: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if match is None:
            if stripped and not stripped.startswith("-"):
                comment = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if comment is not None:
            keys[".".join(key for _, key in stack)] = " ".join(comment)
        comment = None
    return keys


def all_keys(values: Any, prefix: str = "") -> list[str]:
    """Every key path of the values, objects included."""
    paths: list[str] = []
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{prefix}{key}"
            paths.append(path)
            paths.extend(all_keys(value, f"{path}."))
    return paths


def _lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def rows(text: str) -> list[tuple[str, str, str]]:
    """(key, default as JSON, description) of each table row, in file order."""
    keys = documented_keys(text)
    values = yaml.safe_load(text)
    leaves = [path for path in keys if not any(other.startswith(f"{path}.") for other in keys)]
    return [(path, json.dumps(_lookup(values, path)), keys[path]) for path in leaves]


def table(text: str) -> str:
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for key, default, description in rows(text):
        cell, words = default.replace("|", "\\|"), description.replace("|", "\\|")
        lines.append(f"| `{key}` | `{cell}` | {words} |")
    return "\n".join(lines)


def render(readme: str, values_text: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(values_text)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args()
    readme_path = CHART / "README.md"
    readme = readme_path.read_text()
    fresh = render(readme, (CHART / "values.yaml").read_text())
    if args.check:
        if fresh != readme:
            print(f"{readme_path} is stale: run python hack/chart_readme.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
