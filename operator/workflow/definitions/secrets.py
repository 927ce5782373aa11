"""Where settings read mounted Secrets from, named only where that folder exists.

pydantic-settings warns, each time a model is built, when its ``secrets_dir``
does not exist, which is the normal case outside a container. Silencing that
warning at import would change the warning filters of every program that
imports workflow; instead each settings class names the folder only when it is
there, and otherwise reads no secrets, as before. Kubernetes mounts Secrets
before the process starts, so the folder is there at import or not at all.
"""

from __future__ import annotations

from pathlib import Path

#: The folder of mounted Secrets, one file per setting.
SECRETS_PATH = "/run/secrets"


def mounted_secrets_dir() -> str | None:
    """``SECRETS_PATH`` when it is a folder, else None (no secrets source)."""
    return SECRETS_PATH if Path(SECRETS_PATH).is_dir() else None
