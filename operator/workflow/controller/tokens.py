"""The buckets token of one attempt: minted, kept in a Secret of its own, read by the pod.

Each attempt's pod gets a token good only for its Work's buckets record and
its attempt (``workflow.worktokens``), so one Work cannot read or change
another's record. The token must reach the pod without appearing in any
manifest, status, Event or log line, so the operator writes it into a Secret
named after the attempt's Job, and the Job's pod reads it with a
``secretKeyRef`` (its spec names the Secret, never the token). The Secret is
written before the Job is created, so the pod never starts without it, and
it belongs to the Work: deleting the Work deletes it with the Jobs.

Its lifetime covers the longest the attempt can last: waiting to start
(``pending_timeout_seconds``), running (the Work's ``timeout``), and a margin
to record the outcome (``token_margin_seconds``). After that buckets refuses it.
"""

from __future__ import annotations

import base64
from typing import Any

from workflow import worktokens
from workflow.controller import resource
from workflow.controller.jobs import job_name, owner_reference, work_labels
from workflow.controller.resource import WorkSpec
from workflow.controller.settings import OperatorSettings

#: Key of the token in the attempt's Secret.
TOKEN_KEY = "token"  # noqa: S105 (a key name, not a secret)


def minting(spec: WorkSpec, settings: OperatorSettings) -> bool:
    """Whether the operator mints this Work's tokens (a signing key, and no token of its own)."""
    return settings.token_signing_key is not None and spec.tokenSecretRef is None


def secret_name(work_name: str, attempt: int, run_id: str | None = None) -> str:
    """The Secret of an attempt: its Job's name (at most 63 characters) and ``-token``."""
    return f"{job_name(work_name, attempt, run_id)}-token"


def lifetime(spec: WorkSpec, settings: OperatorSettings) -> int:
    """Seconds the token of one attempt stays good."""
    return settings.pending_timeout_seconds + spec.timeout + settings.token_margin_seconds


def token_secret(
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: WorkSpec,
    record: str,
    attempt: int,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The Secret of a newly minted token for ``attempt`` of the Work stored as ``record``."""
    assert settings.token_signing_key is not None
    token = worktokens.mint(
        settings.token_signing_key.get_secret_value(),
        record=record,
        attempt=attempt,
        lifetime=lifetime(spec, settings),
        work=f"{namespace}/{name}",
    )
    labels = {**work_labels(name, uid), resource.ATTEMPT_LABEL: str(attempt)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(name, attempt, spec.runId),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(name, uid)],
        },
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }
