"""How a Work's lifecycle is configured: archiving, metrics, parentage and ownership.

Both models read ``WORKFLOW_CONFIG_*`` (and ``WORKFLOW_CONFIG_ARCHIVE_*``)
environment variables and ``/run/secrets`` when built without arguments, which is
how a Work picks up site-wide defaults. When they are validated from a mapping
(a server response, a manifest) only the mapping counts.
"""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ArchiveStrategy = Literal["bypass", "copy", "delete", "move"]


class Archive(BaseSettings):
    """What happens to a Work's outputs once it finishes."""

    model_config = SettingsConfigDict(
        title="Archive",
        env_prefix="WORKFLOW_CONFIG_ARCHIVE_",
        secrets_dir="/run/secrets",
        extra="ignore",
        validate_assignment=True,
    )

    results: bool = Field(default=True, description="Keep the Work's results in the archive.")
    products: ArchiveStrategy = Field(default="copy", description="How data products are archived.")
    plots: ArchiveStrategy = Field(default="copy", description="How plots are archived.")
    logs: ArchiveStrategy = Field(default="move", description="How logs are archived.")


class Config(BaseSettings):
    """Lifecycle configuration of a Work."""

    model_config = SettingsConfigDict(
        title="Config",
        env_prefix="WORKFLOW_CONFIG_",
        secrets_dir="/run/secrets",
        extra="ignore",
        validate_assignment=True,
    )

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
