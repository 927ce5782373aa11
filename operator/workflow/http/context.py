"""Where buckets is and how to reach it, read from the workspace and the environment.

``HTTPContext`` is what a ``Work`` uses to talk to buckets. Values come, in
this order, from arguments, ``WORKFLOW_HTTP_*`` environment variables, files in
``/run/secrets`` and defaults:

- ``workspace``: the workspace file (``WORKFLOW_HTTP_WORKSPACE``, or
  ``WORKFLOW_WORKSPACE``), whose ``http.baseurls.buckets`` lists the base URLs
  to try, one URL or several;
- ``baseurl``: base URL(s) that replace the workspace's (``WORKFLOW_HTTP_BASEURL``,
  several separated by commas); with it, no workspace file is needed;
- ``token``: the access token (``WORKFLOW_HTTP_TOKEN``, ``WORKFLOW_TOKEN``,
  ``GITHUB_TOKEN`` or ``GITHUB_PAT``); never shown in a repr or a log line;
- ``timeout`` (0.5 to 60 seconds, default 15) and ``retries`` per request.

Building a context does not touch the network. The first use of ``.buckets``
tries each base URL in turn with ``HEAD {url}/version`` and keeps the first
that answers 2xx; when none does, a ``TransportError`` names every URL tried
and why it failed (``Unreachable``, a ``TransportError``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workflow import DEFAULT_WORKSPACE_PATH, TOKEN_VARIABLES
from workflow.definitions.secrets import mounted_secrets_dir
from workflow.definitions.workspace import read_workspace
from workflow.http.buckets import DEFAULT_TIMEOUT, Buckets
from workflow.http.errors import BucketsError, ConfigurationError, Unreachable

__all__ = ["HTTPContext"]


class HTTPContext(BaseSettings):
    """How to reach buckets: the base URL that answers, the token and the timeouts.

    Example::

        context = HTTPContext()          # reads the workspace and WORKFLOW_HTTP_*
        context.buckets.status()         # first use: picks the base URL that answers
    """

    model_config = SettingsConfigDict(
        title="HTTPContext",
        env_prefix="WORKFLOW_HTTP_",
        secrets_dir=mounted_secrets_dir(),
        extra="ignore",
        populate_by_name=True,
    )

    workspace: Path = Field(
        default=DEFAULT_WORKSPACE_PATH,
        validation_alias=AliasChoices("WORKFLOW_HTTP_WORKSPACE", "WORKFLOW_WORKSPACE"),
        description="Workspace file listing the buckets base URLs; needed unless baseurl is set.",
    )
    baseurl: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Buckets base URL(s) replacing the workspace's; commas separate several.",
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT,
        ge=0.5,
        le=60.0,
        description="Seconds per request, 0.5 to 60. Default 15.",
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of a request that may safely be repeated. Default 3.",
    )
    # ``token=`` works as an argument through ``populate_by_name``. "token" is
    # deliberately not an alias: aliases double as environment variable names,
    # and any variable called TOKEN would then be sent to buckets.
    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(*TOKEN_VARIABLES),
        repr=False,
        description="Access token sent to buckets as x-access-token.",
    )

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _buckets: Buckets | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **values: Any) -> None:
        """``transport`` replaces the network, e.g. with ``httpx.MockTransport`` in tests."""
        super().__init__(**values)
        self._transport = transport

    @field_validator("baseurl", mode="before")
    @classmethod
    def _split_baseurls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        return value or None

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _somewhere_to_go(self) -> HTTPContext:
        if not self.baseurl and not self.workspace.expanduser().is_file():
            raise ValueError(
                f"workspace file {self.workspace} does not exist: create it, point "
                "WORKFLOW_WORKSPACE at one, or set WORKFLOW_HTTP_BASEURL"
            )
        return self

    # ------------------------------------------------------------------ base URLs
    def candidates(self) -> list[str]:
        """The base URLs to try, in order: ``baseurl`` if set, else the workspace's."""
        if self.baseurl:
            return [url.rstrip("/") for url in self.baseurl]
        return read_workspace(self.workspace).http.baseurls.candidates("buckets")

    @property
    def buckets(self) -> Buckets:
        """The buckets client, on the first base URL that answers (chosen on first use)."""
        with self._lock:
            if self._buckets is None:
                self._buckets = self._connect()
            return self._buckets

    def _connect(self) -> Buckets:
        urls = self.candidates()
        if not urls:
            raise ConfigurationError(
                f"workspace file {self.workspace} names no buckets base URL under "
                "http.baseurls.buckets, and WORKFLOW_HTTP_BASEURL is not set"
            )
        failures: list[tuple[str, BucketsError]] = []
        for url in urls:
            try:
                client = Buckets(
                    baseurl=url,
                    token=self.token,
                    timeout=self.timeout,
                    retries=self.retries,
                    transport=self._transport,
                )
            except ConfigurationError as error:
                failures.append((url, error))
                continue
            try:
                client.ping(timeout=min(self.timeout, 5.0))
            except BucketsError as error:
                client.close()
                failures.append((url, error))
                continue
            return client
        raise Unreachable(failures)

    def close(self) -> None:
        """Close the buckets client's connections, if it was ever used."""
        with self._lock:
            if self._buckets is not None:
                self._buckets.close()
                self._buckets = None
