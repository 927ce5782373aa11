"""The Work: one unit of scientific or operational work, and its wire document.

Three layers share one set of field definitions, so the schema has one source
of truth:

- ``WorkFields``: what a person asks for (pipeline, what to run, limits). The
  Kubernetes ``Work`` resource's spec is built from these.
- ``WorkDocument``: the full document buckets stores and echoes back; adds
  the lifecycle state (id, status, attempt, times) and the outcome.
- ``Work``: the object scripts use. It is a settings model, so values come
  from arguments, then ``WORKFLOW_*`` environment variables, then
  ``/run/secrets``, then defaults; it knows its workspace and talks to buckets.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from time import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workflow import DEFAULT_WORKSPACE_PATH, RESULTS_LIMIT_BYTES, TOKEN_VARIABLES
from workflow.definitions.config import Config, ConfigFromEnv
from workflow.definitions.notify import Notify, notify_from_env
from workflow.definitions.secrets import mounted_secrets_dir
from workflow.definitions.workspace import read_workspace

if TYPE_CHECKING:  # only for annotations: this layer sits below workflow.http
    from workflow.http.context import HTTPContext

Status = Literal["created", "queued", "running", "success", "failure"]
PIPELINE_PATTERN = r"^[A-Za-z0-9-]+$"
MAX_TIMEOUT = 3 * 24 * 3600


def json_size(value: Any) -> int:
    """Size in bytes of ``value`` serialized as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


class WorkFields(BaseModel):
    """What a person asks for when they describe a Work."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    pipeline: str = Field(
        min_length=1,
        max_length=128,
        pattern=PIPELINE_PATTERN,
        description="Name of the pipeline: 1 to 128 letters, digits and hyphens.",
        examples=["sample-pipeline"],
    )
    site: str = Field(min_length=1, description="Site that performs the Work.")
    user: str = Field(min_length=1, description="Who asked for the Work.")
    function: str | None = Field(
        default=None,
        description="Dotted path of the Python function run as function(**parameters).",
        examples=["workflow.examples.functions.mean"],
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="Keyword arguments of the function."
    )
    command: list[str] | None = Field(
        default=None,
        description="Command run as a subprocess, instead of a function.",
        examples=[["python", "-c", "print(42)"]],
    )
    tags: list[str] | None = Field(default=None, description="Searchable tags.")
    event: list[int] | None = Field(default=None, description="Event ids the Work is about.")
    timeout: int = Field(
        default=3600,
        ge=1,
        le=MAX_TIMEOUT,
        description="Seconds one attempt may run, 1 to 259200 (72 h).",
    )
    retries: int = Field(default=2, ge=0, le=5, description="Attempts after the first one, 0 to 5.")
    priority: int = Field(default=3, ge=1, le=5, description="1 (lowest) to 5 (most urgent).")
    config: Config = Field(default_factory=Config, description="Lifecycle configuration.")
    notify: Notify = Field(default_factory=Notify, description="Notifications.")

    @model_validator(mode="after")
    def _one_thing_to_run(self) -> WorkFields:
        if self.function and self.command:
            raise ValueError(
                "function and command are mutually exclusive: give one of them, not both"
            )
        return self


class WorkDocument(WorkFields):
    """The whole Work as buckets stores it: request, lifecycle state and outcome."""

    results: dict[str, Any] | None = Field(default=None, description="Results of the Work.")
    products: list[str] | None = Field(default=None, description="Data products made.")
    plots: list[str] | None = Field(default=None, description="Plots made.")
    id: str | None = Field(default=None, description="Id given by buckets on deposit.")
    creation: float | None = Field(
        default_factory=time, description="Unix time the Work was created."
    )
    start: float | None = Field(default=None, description="Unix time the attempt started.")
    stop: float | None = Field(default=None, description="Unix time the attempt stopped.")
    attempt: int = Field(default=0, ge=0, description="Attempts made so far.")
    status: Status = Field(default="created", description="Where the Work is in its life.")

    @field_validator("creation")
    @classmethod
    def _creation_defaults_to_now(cls, creation: float | None) -> float:
        return time() if creation is None else creation


class Work(BaseSettings, WorkDocument):
    """A unit of work that scripts deposit to, withdraw from and update in buckets.

    Values are taken, in this order, from the arguments, ``WORKFLOW_*``
    environment variables (``WORKFLOW_CONFIG_*`` and ``WORKFLOW_NOTIFY_SLACK_*``
    for the nested parts), files in ``/run/secrets`` and the defaults.

    Results larger than 4 MiB of JSON are not kept in ``results``: a warning
    names their size. Put large outputs in ``products`` instead. Such results
    in a record read from buckets are sent back unchanged by ``update()``.

    Example::

        work = Work(pipeline="sample", site="local", user="ada", command=["echo", "hi"])
        [work_id] = work.deposit(return_ids=True)
    """

    model_config = SettingsConfigDict(
        title="Work",
        env_prefix="WORKFLOW_",
        secrets_dir=mounted_secrets_dir(),
        extra="ignore",
        validate_assignment=True,
        populate_by_name=True,
        json_schema_mode_override="serialization",
    )

    workspace: FilePath = Field(
        default=DEFAULT_WORKSPACE_PATH,
        validate_default=True,
        exclude=True,
        description="Workspace file (WORKFLOW_WORKSPACE). Never sent.",
    )
    # ``token=`` works as an argument through ``populate_by_name``. "token" is
    # deliberately not an alias: aliases are also environment variable and
    # secret file names, and any variable called TOKEN would then be sent to buckets.
    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(*TOKEN_VARIABLES),
        exclude=True,
        repr=False,
        description="Access token for buckets. Never sent.",
    )
    # An ``HTTPContext`` (checked by ``_http_is_a_context``; the class is found
    # by ``_context_class``, as ``workflow.http`` sits above this layer). Never read from the
    # environment or secrets (``settings_customise_sources``): it is a live object.
    http: Any = Field(
        default=None,
        exclude=True,
        repr=False,
        description="HTTPContext reused across calls (never from the environment). Never sent.",
    )
    config: Config = Field(
        default_factory=ConfigFromEnv, description="Lifecycle configuration (WORKFLOW_CONFIG_*)."
    )
    notify: Notify = Field(
        default_factory=notify_from_env, description="Notifications (WORKFLOW_NOTIFY_SLACK_*)."
    )

    #: Results of the record this Work was built from that were too large to keep
    #: in ``results``: sent back unchanged by ``update()`` unless ``results`` is set.
    _withheld_results: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment and secrets without ``http``, then defaults."""
        return (
            init_settings,
            _Without(settings_cls, env_settings, RUNTIME_FIELDS),
            _Without(settings_cls, dotenv_settings, RUNTIME_FIELDS),
            _Without(settings_cls, file_secret_settings, RUNTIME_FIELDS),
        )

    @field_validator("http")
    @classmethod
    def _http_is_a_context(cls, http: Any) -> Any:
        if http is not None and not isinstance(http, _context_class()):
            raise ValueError(
                f"must be a workflow.http.HTTPContext or None, not {type(http).__name__}"
            )
        return http

    @field_validator("results")
    @classmethod
    def _results_fit(cls, results: dict[str, Any] | None) -> dict[str, Any] | None:
        if results is None:
            return None
        size = json_size(results)
        if size > RESULTS_LIMIT_BYTES:
            _warn_results(size, "store large outputs as products")
            return None
        return results

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "results":
            self._withheld_results = None  # results set anew replace what was withheld
        super().__setattr__(name, value)

    @model_validator(mode="after")
    def _site_in_workspace(self) -> Work:
        if self.config.strategy == "strict":
            sites = read_workspace(self.workspace).sites
            if self.site not in sites:
                raise ValueError(
                    f"site {self.site!r} is not one of the workspace's sites {sites} "
                    f"(workspace {self.workspace}; set config.strategy='relaxed' to skip)"
                )
        return self

    # ------------------------------------------------------------------ payload
    @property
    def payload(self) -> dict[str, Any]:
        """The document sent to buckets: every field but workspace, token and http.

        Results withheld from a record too large to keep (see ``from_dict``) are
        sent back as they came, so an ``update()`` never erases them.
        """
        payload = self.model_dump(mode="json")
        if self._withheld_results is not None and payload.get("results") is None:
            payload["results"] = self._withheld_results
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Work:
        """Build a Work from a document, e.g. one returned by buckets.

        Results over the limit (4 MiB of JSON) are not kept in ``results``
        (a warning names their size); ``update()`` sends them back unchanged
        unless ``results`` is given a new value.
        """
        results = payload.get("results")
        size = json_size(results) if isinstance(results, dict) else 0
        if size <= RESULTS_LIMIT_BYTES:
            return cls(**payload)
        _warn_results(size, "update() sends them back unchanged")
        work = cls(**{**payload, "results": None})
        work._withheld_results = results
        return work

    @classmethod
    def from_json(cls, text: str) -> Work:
        """Build a Work from a JSON document."""
        return cls.from_dict(json.loads(text))

    # ------------------------------------------------------------------ buckets
    def _context(self, timeout: float | None, token: SecretStr | str | None) -> HTTPContext:
        if token is not None:
            self.token = SecretStr(token) if isinstance(token, str) else token
        if self.http is None:
            options: dict[str, Any] = {"workspace": self.workspace, "token": self.token}
            if timeout is not None:
                options["timeout"] = timeout
            self.http = _context_class()(**options)
        context: HTTPContext = self.http
        return context

    def deposit(
        self,
        return_ids: bool = False,
        timeout: float | None = None,
        token: SecretStr | str | None = None,
        http: HTTPContext | None = None,
    ) -> bool | list[str]:
        """Record this Work in buckets; with ``return_ids`` return its id in a list."""
        if http is not None:
            self.http = http
        context = self._context(timeout, token)
        return context.buckets.deposit(works=[self.payload], return_ids=return_ids)

    @classmethod
    def withdraw(
        cls,
        pipeline: str | list[str],
        event: list[int] | None = None,
        site: str | None = None,
        priority: int | None = None,
        user: str | None = None,
        tags: list[str] | None = None,
        parent: list[str] | str | None = None,
        timeout: float | None = None,
        token: SecretStr | str | None = None,
        http: HTTPContext | None = None,
    ) -> Work | None:
        """Claim the most urgent queued Work matching the filters, or None if there is none."""
        if http is None:
            options: dict[str, Any] = {}
            if timeout is not None:
                options["timeout"] = timeout
            if token is not None:
                options["token"] = token
            http = _context_class()(**options)
        document = http.buckets.withdraw(
            pipeline=pipeline,
            event=event,
            site=site,
            priority=priority,
            user=user,
            tags=tags,
            parent=parent,
        )
        if not document:
            return None
        work = cls.from_dict(document)
        work.http = http
        return work

    def update(self) -> bool:
        """Write this Work's current fields to its record in buckets."""
        return self._context(None, None).buckets.update([self.payload])

    def delete(self) -> bool:
        """Delete this Work's record from buckets."""
        if self.id is None:
            raise ValueError("id: this Work has not been deposited, so there is nothing to delete")
        return self._context(None, None).buckets.delete_ids([self.id])


#: The module whose ``HTTPContext`` a Work uses to reach buckets. The definitions
#: are the lowest layer (the operator's pure modules import them and must not pull
#: in httpx), so the client above is looked up by name when a Work first talks to
#: buckets, never imported here.
CONTEXT_MODULE = "workflow.http.context"


def _context_class() -> type[HTTPContext]:
    """``workflow.http.context.HTTPContext``, imported on first use."""
    context_class: type[HTTPContext] = importlib.import_module(CONTEXT_MODULE).HTTPContext
    return context_class


def _warn_results(size: int, advice: str) -> None:
    warnings.warn(
        f"results are {size} bytes of JSON, over the {RESULTS_LIMIT_BYTES} byte "
        f"limit; they are not kept in Work.results ({advice})",
        UserWarning,
        stacklevel=3,
    )


#: Fields of ``Work`` that hold live objects: never read from the environment or secrets.
RUNTIME_FIELDS = frozenset({"http"})


class _Without(PydanticBaseSettingsSource):
    """A settings source that leaves out some fields (the live objects) of another."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        source: PydanticBaseSettingsSource,
        fields: frozenset[str],
    ) -> None:
        super().__init__(settings_cls)
        self.source, self.fields = source, fields

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def _set_current_state(self, state: dict[str, Any]) -> None:
        super()._set_current_state(state)
        self.source._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        super()._set_settings_sources_data(states)
        self.source._set_settings_sources_data(states)

    def __call__(self) -> dict[str, Any]:
        return {key: value for key, value in self.source().items() if key not in self.fields}


def document_path(path: Path | str) -> WorkDocument:
    """Read a Work document from a JSON or YAML file, without workspace checks."""
    import yaml

    text = Path(path).read_text()
    return WorkDocument.model_validate(yaml.safe_load(text))
