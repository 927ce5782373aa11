"""Container environment resolution, as the kubelet does it.

Order and rules follow the kubelet's ``makeEnvironmentVariables``: the
``KUBERNETES_*`` service variables, then ``envFrom`` sources (ConfigMaps and
Secrets, with prefix, invalid names skipped), then ``env`` entries, which
override; ``value`` strings expand ``$(VAR)`` against what is defined so far
(``$$`` escapes, unknown references stay verbatim). A missing non-optional
reference is a configuration error that keeps the container waiting.
"""

from __future__ import annotations

import base64
import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Fetch = Callable[[str, str, str], dict[str, Any] | None]
"""fetch(kind, namespace, name) -> object or None when it does not exist."""


class ConfigError(Exception):
    """The container cannot start because its configuration refers to something missing."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes ``$(VAR)`` expansion (k8s.io/kubernetes/third_party/forked/golang/expansion)."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_variable_name(text[cursor + 1 :])
            if is_var:
                value = lookup(read)
                out.append(value if value is not None else f"$({read})")
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _read_variable_name(text: str) -> tuple[str, bool, int]:
    if text[0] == "$":
        return "$", False, 1
    if text[0] == "(":
        for index in range(1, len(text)):
            if text[index] == ")":
                return text[1:index], True, index + 1
        return "$(", False, 1
    return "$" + text[0], False, 1


_VALID_NAME = re.compile(
    r"^[ -<>-~]+$"
)  # printable ASCII except '=' (relaxed validation, GA in 1.34)

_SUFFIXES: dict[str, int | decimal.Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")


def parse_quantity(text: str | int | float) -> decimal.Decimal:
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return decimal.Decimal(number + suffix)
    return decimal.Decimal(number) * decimal.Decimal(_SUFFIXES[suffix])


def resolve(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    fetch: Fetch,
    service_env: Mapping[str, str],
    node_allocatable: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """Return the container's environment and the names of skipped invalid envFrom keys."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    skipped: list[str] = []
    cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    def get(kind: str, name: str) -> dict[str, Any] | None:
        if (kind, name) not in cache:
            cache[kind, name] = fetch(kind, namespace, name)
        return cache[kind, name]

    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref, kind = source["configMapRef"], "configmap"
        elif "secretRef" in source:
            ref, kind = source["secretRef"], "secret"
        else:
            continue
        obj = get(kind, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind} "{ref["name"]}" not found')
        for key, value in _data_of(kind, obj).items():
            name = prefix + key
            if not _VALID_NAME.match(name):
                skipped.append(name)
                continue
            env[name] = value

    def lookup(name: str) -> str | None:
        if name in env:
            return env[name]
        return service_env.get(name)

    for entry in container.get("env") or []:
        name = entry["name"]
        if "valueFrom" not in entry:
            env[name] = expand(entry.get("value") or "", lookup)
            continue
        resolved = _value_from(pod, container, entry["valueFrom"], get, node_allocatable)
        if resolved is None:
            continue  # optional reference that does not resolve: the variable is left unset
        env[name] = resolved

    for name, value in service_env.items():
        env.setdefault(name, value)
    return env, skipped


def _data_of(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    if kind == "secret":
        data = {
            k: base64.b64decode(v).decode(errors="replace")
            for k, v in (obj.get("data") or {}).items()
        }
        data.update(obj.get("stringData") or {})
        return data
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(value).decode(errors="replace"))
    return data


def _value_from(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    source: Mapping[str, Any],
    get: Callable[[str, str], dict[str, Any] | None],
    node_allocatable: Mapping[str, str],
) -> str | None:
    for field, kind, title in (
        ("secretKeyRef", "secret", "Secret"),
        ("configMapKeyRef", "configmap", "ConfigMap"),
    ):
        if field not in source:
            continue
        ref = source[field]
        optional = bool(ref.get("optional"))
        obj = get(kind, ref["name"])
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind} "{ref["name"]}" not found')
        data = _data_of(kind, obj)
        if ref["key"] not in data:
            if optional:
                return None
            namespace = pod["metadata"]["namespace"]
            raise ConfigError(
                f"couldn't find key {ref['key']} in {title} {namespace}/{ref['name']}"
            )
        return data[ref["key"]]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(pod, container, source["resourceFieldRef"], node_allocatable)
    raise ConfigError(f"unsupported valueFrom source: {sorted(source)}")


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """The downward-API value of ``path`` (the fieldRef paths a kubelet supports for env)."""
    metadata = pod["metadata"]
    status = pod.get("status") or {}
    match = _SUBSCRIPT.match(path)
    if match:
        return (metadata.get(match.group(1)) or {}).get(match.group(2), "")
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", "127.0.0.1"),
        "status.hostIPs": ",".join(
            ip["ip"] for ip in status.get("hostIPs") or [{"ip": "127.0.0.1"}]
        ),
        "status.podIP": status.get("podIP", "127.0.0.1"),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or [{"ip": "127.0.0.1"}]),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        items = metadata.get(path.split(".")[1]) or {}
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef path {path!r}")


def resource_value(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    ref: Mapping[str, Any],
    node_allocatable: Mapping[str, str],
) -> str:
    target = container
    if ref.get("containerName"):
        everything = (pod["spec"].get("containers") or []) + (
            pod["spec"].get("initContainers") or []
        )
        target = next((c for c in everything if c["name"] == ref["containerName"]), container)
    kind, _, resource = ref["resource"].partition(".")
    resources = (target.get("resources") or {}).get(kind) or {}
    raw = resources.get(resource)
    if raw is None:
        raw = node_allocatable.get(resource, "0") if kind == "limits" else "0"
    value = parse_quantity(raw)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        raise ConfigError(f"divisor of resource {ref['resource']} is zero")
    return str(math.ceil(value / divisor))
