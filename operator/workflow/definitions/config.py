"""How a Work's lifecycle is configured: archiving, metrics, parentage and ownership.

``Archive`` and ``Config`` are plain models: validating a mapping (a server
request, a manifest, a reply) uses only that mapping. Their ``...FromEnv``
twins are settings classes that also read ``WORKFLOW_CONFIG_*`` and
``WORKFLOW_CONFIG_ARCHIVE_*`` variables and ``/run/secrets``; the ``Work``
object uses them for its defaults, which is how a site sets its defaults.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflow.definitions.secrets import mounted_secrets_dir

ArchiveStrategy = Literal["bypass", "copy", "delete", "move"]


class Archive(BaseModel):
    """What happens to a Work's outputs once it finishes."""

    model_config = ConfigDict(title="Archive", extra="ignore", validate_assignment=True)

    results: bool = Field(default=True, description="Keep the Work's results in the archive.")
    products: ArchiveStrategy = Field(default="copy", description="How data products are archived.")
    plots: ArchiveStrategy = Field(default="copy", description="How plots are archived.")
    logs: ArchiveStrategy = Field(default="move", description="How logs are archived.")


class Config(BaseModel):
    """Lifecycle configuration of a Work."""

    model_config = ConfigDict(title="Config", extra="ignore", validate_assignment=True)

    archive: Archive = Field(default_factory=Archive, description="Archive strategy.")
    metrics: bool = Field(default=False, description="Emit metrics about the Work's lifecycle.")
    parent: str | None = Field(default=None, description="Id of the parent pipeline, if any.")
    orgs: list[str] = Field(
        default_factory=lambda: ["chimefrb"],
        description="Organisations the Work belongs to.",
    )
    teams: list[str] | None = Field(default=None, description="Teams with access to the Work.")
    strategy: Literal["strict", "relaxed"] = Field(
        default="strict",
        exclude=True,
        description="strict: the Work's site must be listed in the workspace. Never sent.",
    )


class ArchiveFromEnv(BaseSettings, Archive):
    """``Archive`` with defaults from ``WORKFLOW_CONFIG_ARCHIVE_*`` and ``/run/secrets``."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_CONFIG_ARCHIVE_", secrets_dir=mounted_secrets_dir(), extra="ignore"
    )


class ConfigFromEnv(BaseSettings, Config):
    """``Config`` with defaults from ``WORKFLOW_CONFIG_*`` and ``/run/secrets``."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_CONFIG_", secrets_dir=mounted_secrets_dir(), extra="ignore"
    )

    archive: Archive = Field(default_factory=ArchiveFromEnv, description="Archive strategy.")
