"""The chart's files stay in step with the code and with each other (no helm, no cluster).

The CRD the chart installs is the generated one; every value is commented,
typed by the schema and listed in the chart README; every operator setting
is either set by the chart or reachable from values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from workflow.controller.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "workflow"
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_the_chart_crd_file_is_a_byte_identical_copy_of_the_generated_crd():
    assert (CHART / "files" / "work-crd.yaml").read_bytes() == (
        ROOT / "crds" / "work.yaml"
    ).read_bytes(), (
        "run: cp crds/work.yaml charts/workflow/files/work-crd.yaml (make crd does both)"
    )


def test_the_chart_readme_values_table_is_current():
    import chart_readme

    readme = (CHART / "README.md").read_text()
    assert chart_readme.render(readme, VALUES_TEXT) == readme, "run: python hack/chart_readme.py"


def test_every_values_key_is_commented_and_so_listed_in_the_readme():
    import chart_readme

    documented = chart_readme.documented_keys(VALUES_TEXT)
    rows = {key for key, _, _ in chart_readme.rows(VALUES_TEXT)}
    for path in chart_readme.all_keys(VALUES):
        covered = (
            path in documented
            or any(path.startswith(f"{row}.") for row in rows)  # inside a pass-through object
            or any(key.startswith(f"{path}.") for key in documented)  # a group of documented keys
        )
        assert covered, f"values.yaml key {path} has no '# --' comment"
    readme = (CHART / "README.md").read_text()
    for row in rows:
        assert f"| `{row}` |" in readme, row


def _schema_nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node, with the values path it describes."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(node, dict):
        return found
    found.append((path or "/", node))
    for key, child in (node.get("properties") or {}).items():
        found.extend(_schema_nodes(child, f"{path}/{key}"))
    if isinstance(node.get("items"), dict):
        found.extend(_schema_nodes(node["items"], f"{path}[]"))
    for branch in node.get("allOf", []):
        found.extend(_schema_nodes(branch.get("then", {}), path))
    return found


def test_the_schema_closes_every_object_it_declares():
    declared = [
        (path, node)
        for path, node in _schema_nodes(SCHEMA)
        if node.get("type") == "object" and "properties" in node
    ]
    assert len(declared) > 20
    for path, node in declared:
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_every_values_key_is_declared_in_the_schema():
    def walk(values: Any, schema: dict[str, Any], path: str) -> None:
        properties = schema.get("properties")
        if not isinstance(values, dict) or properties is None:
            return
        for key, value in values.items():
            assert key in properties, f"values key {path}{key} is missing from values.schema.json"
            walk(value, properties[key], f"{path}{key}.")

    walk(VALUES, SCHEMA, "")


def test_every_operator_setting_is_set_by_the_chart_or_reachable_from_values():
    template = (CHART / "templates" / "operator-deployment.yaml").read_text()
    fixed = set(re.findall(r"name: WORKFLOW_OPERATOR_([A-Z_]+)\n", template))
    from_values = {
        re.sub(r"(?<!^)([A-Z])", r"_\1", key).upper() for key in VALUES["operator"]["settings"]
    }
    fields = {name.upper() for name in OperatorSettings.model_fields}
    assert fixed | from_values == fields
    assert not fixed & from_values


def test_operator_settings_defaults_match_the_operator_except_where_the_chart_decides():
    defaults = OperatorSettings().model_dump()
    differ = {}
    for key, value in VALUES["operator"]["settings"].items():
        field = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        if defaults[field] != value:
            differ[key] = (defaults[field], value)
    # The chart runs Work pods as the image's non-root user.
    assert differ == {"runAsUser": (1000, 10001)}


def test_every_template_says_why_it_exists_and_holds_one_kind():
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = template.read_text()
        assert text.startswith("{{- /*"), f"{template.name} opens without a comment"
        kinds = set(re.findall(r"^kind: (\w+)", text, re.M))
        assert len(kinds) <= 1, f"{template.name}: {kinds}"
        if kinds:
            kind = kinds.pop().lower()
            assert template.stem.endswith(kind), f"{template.name} holds a {kind}"


def test_helpers_are_prefixed_with_the_chart_name_and_commented():
    text = (CHART / "templates" / "_helpers.tpl").read_text()
    defines = re.findall(r'\{\{- define "([^"]+)" -\}\}', text)
    assert defines and all(name.startswith("workflow.") for name in defines)
    for name in defines:
        before = text.split(f'{{{{- define "{name}" -}}}}', 1)[0].rstrip()
        assert before.endswith("*/}}"), f"define {name} has no comment above it"
