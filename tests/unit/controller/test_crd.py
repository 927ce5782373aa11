"""The committed CRD is the generated one, and it is a structural schema."""

from pathlib import Path

import yaml

from workflow.controller import crd

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crd_matches_the_models():
    committed = (ROOT / "crds" / "work.yaml").read_text()
    assert committed == crd.render(), "crds/work.yaml is stale: run `workflow crd > crds/work.yaml`"


def _walk(node, path="schema"):
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_every_schema_node_is_typed_and_has_no_refs():
    schema = crd.work_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_free_form_only_where_content_is_free():
    schema = crd.work_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    free = {
        path for path, node in _walk(schema) if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert free == {
        "schema.spec.parameters",
        "schema.spec.notify.slack.blocks",
        "schema.spec.notify.slack.reply",
        "schema.spec.env[].valueFrom",
        "schema.spec.tolerations[]",
        "schema.status.results",
    }


def test_spec_carries_the_ranges_and_pattern():
    spec = crd.work_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    assert props["pipeline"]["pattern"] == "^[A-Za-z0-9-]+$"
    assert (props["priority"]["minimum"], props["priority"]["maximum"]) == (1, 5)
    assert (props["retries"]["minimum"], props["retries"]["maximum"]) == (0, 5)
    assert (props["timeout"]["minimum"], props["timeout"]["maximum"]) == (1, 259200)
    assert set(spec["required"]) == {"pipeline", "site", "user"}
    assert "strategy" not in props["config"]["properties"], "strategy is never sent"
    rules = [rule["rule"] for rule in spec["x-kubernetes-validations"]]
    assert "has(self.function) != has(self.command)" in rules


def test_status_subresource_printer_columns_and_names():
    manifest = crd.work_crd()
    version = manifest["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column for column in version["additionalPrinterColumns"]}
    assert set(columns) == {"Phase", "Attempt", "Pipeline", "Age", "Message"}
    assert columns["Message"]["priority"] == 1
    assert manifest["spec"]["names"]["shortNames"] == ["wk"]
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "conditions"
    ]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_render_is_yaml_of_the_manifest():
    assert yaml.safe_load(crd.render()) == crd.work_crd()
