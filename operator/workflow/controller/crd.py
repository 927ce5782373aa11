"""The Work CustomResourceDefinition, generated from the pydantic models.

Pydantic writes JSON Schema; Kubernetes wants a *structural* OpenAPI v3
schema: every node typed, no ``$ref``, no ``anyOf`` for optional fields, and
``x-kubernetes-preserve-unknown-fields`` only where content is free-form. This
module converts one into the other and adds what JSON Schema cannot say: CEL
rules, printer columns and the status subresource. ``crds/work.yaml`` is this
module's output (``workflow crd > crds/work.yaml``); a test keeps them equal.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import yaml

from workflow.controller import resource

#: JSON Schema keywords that carry over to a CRD schema unchanged.
_KEPT = {
    "type", "description", "format", "pattern", "enum", "default",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    "uniqueItems", "required", "items", "properties", "additionalProperties",
}  # fmt: skip

#: Cross-field rules the apiserver checks on every create and update.
SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "has(self.function) != has(self.command)",
        "message": "exactly one of spec.function and spec.command must be set",
        "fieldPath": ".function",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.parameters) || has(self.function)",
        "message": (
            "spec.parameters needs spec.function (a command takes its arguments in spec.command)"
        ),
        "fieldPath": ".parameters",
        "reason": "FieldValueInvalid",
    },
]

#: Spec fields that may change after a Work has started: the re-run switch and the expiry.
MUTABLE_SPEC_FIELDS = ("runId", "ttlSecondsAfterFinished")

_PHASE = "has(oldSelf.status) && has(oldSelf.status.phase) && oldSelf.status.phase"
_STARTED = f"{_PHASE} != 'created'"
_FINISHED = f"{_PHASE} in ['success', 'failure']"


#: CEL reserved words; Kubernetes exposes a property with such a name as ``__<word>__``.
_CEL_RESERVED = {
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while",
}  # fmt: skip


def cel_property(name: str) -> str:
    """How a CEL expression names the property ``name`` (``function`` is ``__function__``)."""
    return f"__{name}__" if name in _CEL_RESERVED else name


def _unchanged(name: str) -> str:
    """CEL: ``spec.<name>`` is the same before and after the update (absent on both is same)."""
    prop = cel_property(name)
    new, old = f"self.spec.{prop}", f"oldSelf.spec.{prop}"
    return f"(has({new}) ? has({old}) && {new} == {old} : !has({old}))"


def frozen_spec_rules(fields: list[str]) -> list[dict[str, str]]:
    """Transition rules, at the root (they read the status), that freeze a started Work's spec.

    A Work's spec is its record: once the operator has picked it up (phase past
    ``created``) only ``runId`` and ``ttlSecondsAfterFinished`` may change. A
    finished Work given a new ``runId`` may change the rest in the same update:
    that is a new run of a new spec. ``runId`` itself may not change while a run
    is in progress (queued or running): the current run finishes first.

    One rule per field, so the error names the field. CEL cannot iterate the
    keys of a typed object, hence the generated list.
    """
    rerun = f"({_FINISHED} && !{_unchanged('runId')})"
    rules = [
        {
            "rule": f"!({_STARTED}) || {rerun} || {_unchanged(name)}",
            "message": f"spec.{name} cannot change once the Work has started; after it "
            "finishes, set a new spec.runId to run it again with a changed spec",
            "fieldPath": f".spec.{name}",
            "reason": "FieldValueForbidden",
        }
        for name in fields
        if name not in MUTABLE_SPEC_FIELDS
    ]
    rules.append(
        {
            "rule": f"!({_STARTED}) || ({_FINISHED}) || {_unchanged('runId')}",
            "message": "spec.runId cannot change while the Work is queued or running; "
            "change it after the Work finishes to run it again",
            "fieldPath": ".spec.runId",
            "reason": "FieldValueForbidden",
        }
    )
    return rules


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Attempt", "type": "integer", "jsonPath": ".status.attempt"},
    {"name": "Pipeline", "type": "string", "jsonPath": ".spec.pipeline"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn a pydantic JSON Schema into a structural CRD schema (``$ref`` inlined)."""
    definitions = schema.get("$defs", {})

    def convert(node: dict[str, Any]) -> dict[str, Any]:
        node = deepcopy(node)
        if "$ref" in node:
            target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
            node = {**deepcopy(target), **node}
        options = node.pop("anyOf", None)
        if options is not None:
            concrete = [option for option in options if option.get("type") != "null"]
            if len(concrete) != 1:
                raise ValueError(f"cannot express anyOf {options} in a structural schema")
            # Optional fields are simply absent; a null in a manifest is pruned by the apiserver.
            # Optional fields are simply absent; the apiserver prunes a null given for them.
            merged = {**convert(concrete[0]), **{k: v for k, v in node.items() if k in _KEPT}}
            if merged.get("default", ...) is None:
                del merged["default"]
            return _ordered(merged)
        if "const" in node:
            node["enum"] = [node.pop("const")]
        out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEPT}
        if out.get("default", ...) is None:
            del out["default"]
        kind = out.get("type")
        if kind is None and "enum" in out:
            out["type"] = "string"
        if "properties" in out:
            out["type"] = "object"
            out["properties"] = {k: convert(v) for k, v in out["properties"].items()}
        if kind == "array" and "items" in out:
            out["items"] = convert(out["items"])
        extra = out.pop("additionalProperties", None)
        if kind == "object" and "properties" not in out:
            scalar = ("string", "integer", "number", "boolean")
            if isinstance(extra, dict) and extra.get("type") in scalar:
                out["additionalProperties"] = convert(extra)
            else:
                out["x-kubernetes-preserve-unknown-fields"] = True
        if kind is None and "properties" not in out:
            # Any JSON value (e.g. a free-form dict value): keep it as given.
            out["x-kubernetes-preserve-unknown-fields"] = True
        return _ordered(out)

    return convert(schema)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Type and description first, so the YAML reads like a hand-written CRD."""
    first = [key for key in ("type", "description") if key in node]
    rest = {key: value for key, value in node.items() if key not in first}
    return {**{key: node[key] for key in first}, **rest}


def _model_schema(model: type) -> dict[str, Any]:
    return structural(model.model_json_schema(mode="serialization"))  # type: ignore[attr-defined]


def _drop_defaults(node: dict[str, Any]) -> None:
    """Remove object defaults: the apiserver would materialise them; the operator applies them."""
    node.pop("default", None)
    for child in node.get("properties", {}).values():
        _drop_defaults(child)
    if isinstance(node.get("items"), dict):
        _drop_defaults(node["items"])


def work_crd() -> dict[str, Any]:
    """The Work CRD manifest."""
    spec = _model_schema(resource.WorkSpec)
    spec["x-kubernetes-validations"] = SPEC_RULES
    for name in ("config", "notify"):
        _drop_defaults(spec["properties"][name])
    status = _model_schema(resource.WorkStatus)
    _drop_defaults(status)
    status["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    for node in (spec, status):
        node.pop("description", None)
    schema = {
        "type": "object",
        "description": "A unit of scientific or operational work, run as Kubernetes Jobs.",
        "required": ["spec"],
        "x-kubernetes-validations": frozen_spec_rules(list(spec["properties"])),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {**spec, "description": "What to run, and how."},
            "status": {**status, "description": "What the operator observed and did."},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.PLURAL}.{resource.GROUP}"},
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.KIND,
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": resource.SHORT_NAMES,
                "categories": resource.CATEGORIES,
            },
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML committed in ``crds/work.yaml``."""
    header = "# Generated from workflow.controller.resource by `workflow crd`; do not edit.\n"
    return header + yaml.safe_dump(work_crd(), sort_keys=False, width=100)
