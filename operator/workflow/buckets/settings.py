"""Settings of the buckets service, read from ``WORKFLOW_BUCKETS_*`` variables.

One object holds everything the service needs to start: where the data
lives, where to listen, who may call it and how much one request may send.
The command line (``workflow buckets serve``) fills the same object, so a
deployment can be configured by environment alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflow.worktokens import check_key

#: Folder for the default SQLite database, following the XDG base directory spec.
DATA_HOME = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
DEFAULT_DATABASE = f"sqlite:///{DATA_HOME / 'workflow' / 'buckets.sqlite3'}"
MIB = 1024 * 1024


class BucketsSettings(BaseSettings):
    """How the buckets service stores works, listens and authenticates."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_BUCKETS_",
        extra="ignore",
        secrets_dir=None,
    )

    database: str = Field(
        default=DEFAULT_DATABASE,
        description=(
            "Where works are stored: 'sqlite:///path/to/file.sqlite3' (embedded) or a "
            "'postgresql://' DSN. Default: a SQLite file in the user's data folder "
            "(~/.local/share/workflow/buckets.sqlite3)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on. Default 127.0.0.1.")
    port: int = Field(
        default=8004, ge=0, le=65535, description="TCP port to listen on. Default 8004."
    )
    tokens_file: Path | None = Field(
        default=None,
        description=(
            "File of access tokens (YAML if it ends in .yaml/.yml, else one "
            "'name scopes token' line each). Default: none."
        ),
    )
    tokens: SecretStr | None = Field(
        default=None,
        description=(
            "Access tokens given inline, in the line format of tokens_file (entries "
            "separated by newlines or ';'; a bare token gets read and write). Default: none."
        ),
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key (at least 32 bytes, from a Secret shared with the operator) that checks the "
            "signed per-attempt work tokens the operator mints; each may read and update "
            "only its own Work's record. Default: none (work tokens are refused)."
        ),
    )
    token_leeway_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description=(
            "Seconds a work token is still accepted after it expired, for clocks that "
            "differ between the operator and buckets. Default 30."
        ),
    )
    max_body_bytes: int = Field(
        default=16 * MIB,
        ge=1024,
        description="Largest request body accepted, in bytes. Default 16 MiB (16777216).",
    )
    max_body_values: int = Field(
        default=1_000_000,
        ge=1000,
        description=(
            "Most JSON values a request body may hold (each array, object, string, number, "
            "true, false and null counts; object keys do not); more is answered 413 before "
            "the body is parsed. Default 1000000."
        ),
    )
    pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Most PostgreSQL connections one server process opens. Default 10.",
    )
    sqlite_readers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Threads (each with its own connection) serving SQLite reads. Default 4.",
    )

    @field_validator("database")
    @classmethod
    def _known_scheme(cls, database: str) -> str:
        if database.startswith(("sqlite:///", "postgresql://", "postgres://")):
            return database
        raise ValueError(
            "database must be a 'sqlite:///path' URL or a 'postgresql://' DSN, "
            f"not {database.split('://')[0]!r}"
        )

    @field_validator("signing_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value():
            return None
        check_key(key.get_secret_value(), "signing_key")
        return key

    @property
    def store_kind(self) -> str:
        """``"sqlite"`` or ``"postgres"``, from the database URL."""
        return "sqlite" if self.database.startswith("sqlite:") else "postgres"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file named by ``database`` (only for SQLite URLs)."""
        if self.store_kind != "sqlite":
            raise ValueError("database is not a SQLite URL")
        return Path(self.database.removeprefix("sqlite:///")).expanduser()

    @property
    def safe_database(self) -> str:
        """``database`` with any password replaced by ``***``, fit for logs."""
        if self.store_kind == "sqlite":
            return self.database
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self.database)
        except Exception:
            return "postgresql://(unparsable DSN)"
        host = parts.get("host") or "localhost"
        port = parts.get("port") or "5432"
        return f"postgresql://{parts.get('user') or ''}@{host}:{port}/{parts.get('dbname') or ''}"
