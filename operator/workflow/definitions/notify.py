"""Where a Work reports when it finishes (Slack today).

``Slack`` forbids unknown keys, like the public client does, so a typo in a
notification block is an error instead of a silently dropped setting. As in
``config``, the plain models read only what they are given; ``SlackFromEnv``
adds ``WORKFLOW_NOTIFY_SLACK_*`` variables for the ``Work`` object's defaults.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflow.definitions.secrets import mounted_secrets_dir


class Slack(BaseModel):
    """Slack notification settings."""

    model_config = ConfigDict(title="Slack", extra="forbid", validate_assignment=True)

    channel_id: StrictStr | None = Field(default=None, description="Channel to post to.")
    member_ids: list[StrictStr] | None = Field(default=None, description="Members to mention.")
    message: StrictStr | None = Field(default=None, description="Message text.")
    results: bool | None = Field(default=None, description="Include the results.")
    products: bool | None = Field(default=None, description="Include links to products.")
    plots: bool | None = Field(default=None, description="Include links to plots.")
    blocks: dict[str, Any] | None = Field(default=None, description="Slack blocks to send.")
    reply: dict[str, Any] | None = Field(default=None, description="Slack's reply, once sent.")


class Notify(BaseModel):
    """Notification channels of a Work."""

    model_config = ConfigDict(title="Notify", extra="forbid")

    slack: Slack = Field(default_factory=Slack, description="Slack notification.")


class SlackFromEnv(BaseSettings, Slack):
    """``Slack`` with defaults from ``WORKFLOW_NOTIFY_SLACK_*`` and ``/run/secrets``."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_NOTIFY_SLACK_", secrets_dir=mounted_secrets_dir(), extra="ignore"
    )


def notify_from_env() -> Notify:
    """A ``Notify`` whose Slack defaults come from the environment."""
    return Notify(slack=SlackFromEnv())
