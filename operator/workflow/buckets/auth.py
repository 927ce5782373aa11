"""Access tokens: who may call buckets, and for what.

When any token is configured every endpoint except ``/healthz``,
``GET``/``HEAD /version`` and the API documentation requires one, sent as
``x-access-token: <token>`` (what the public client sends) or
``Authorization: Bearer <token>``. A missing token is answered 401, a wrong
one or one without the needed scope 403.

Scopes: ``read`` (views, status, audit counts, single works) and ``write``
(deposit, withdraw, update, delete and the audits that change works).

A token may also be limited to some pipelines (``pipelines``): it then
deposits, withdraws, reads, updates and deletes works of those pipelines
only, and cannot run the audits, which act on every pipeline
(``buckets.tenancy`` applies the rules). A token without ``pipelines``
reaches every pipeline, as before.

Tokens come from ``tokens_file`` and/or ``WORKFLOW_BUCKETS_TOKENS``.
A file whose name ends in ``.yaml`` or ``.yml`` is YAML::

    tokens:
      - name: operator
        token: "change-me"
        scopes: [read, write]
      - name: dashboard
        token: "also-change-me"
        scopes: [read]
      - name: statistics-workers
        token: "change-me-too"
        scopes: [read, write]
        pipelines: [statistics, statistics-nightly]

Any other file, and the environment variable, use one entry per line
(``#`` starts a comment; in the variable ``;`` also separates entries)::

    # name              scopes      token           [pipelines]
    operator            read,write  change-me
    dashboard           read        also-change-me
    statistics-workers  read,write  change-me-too   statistics,statistics-nightly

A line holding only a token grants ``read`` and ``write``. Tokens are
compared in constant time against every configured token; only token names
ever reach logs and error messages.

With a signing key (``signing_key``) buckets also accepts the *work tokens*
the Kubernetes operator mints for each attempt of a Work
(``workflow.worktokens``): signed, checked without a lookup, and good for
reading and updating that Work's own record only, until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from workflow.worktokens import WorkGrant, WorkTokenError, looks_like_work_token, verify

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")


class TokenConfigError(ValueError):
    """The token file or variable cannot be read."""


@dataclass(frozen=True)
class Token:
    """One configured token, kept as a digest so equal-length comparisons stay constant time."""

    name: str
    digest: bytes
    scopes: frozenset[str]
    #: The pipelines this token reaches; None: every pipeline.
    pipelines: frozenset[str] | None = None

    def __repr__(self) -> str:
        limited = "" if self.pipelines is None else f", pipelines={sorted(self.pipelines)}"
        return f"Token(name={self.name!r}, scopes={sorted(self.scopes)}{limited})"


@dataclass(frozen=True)
class Grant:
    """What the token of one request may do: its scopes, and the works it may touch.

    ``pipelines`` limits a configured token to some pipelines; ``record`` and
    ``attempt`` bind a work token to one record and one attempt of it. Neither:
    every work.
    """

    name: str
    scopes: frozenset[str]
    pipelines: frozenset[str] | None = None
    record: str | None = None
    attempt: int | None = None

    @classmethod
    def of(cls, token: Token | WorkGrant) -> Grant:
        if isinstance(token, WorkGrant):
            return cls(
                name=token.name,
                scopes=frozenset(SCOPES),
                record=token.record,
                attempt=token.attempt,
            )
        return cls(name=f"token {token.name!r}", scopes=token.scopes, pipelines=token.pipelines)


class Refused(Exception):
    """A presented token that grants nothing; the message is safe to send back."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def make_token(
    name: str,
    secret: str,
    scopes: Iterable[str],
    where: str,
    pipelines: Iterable[str] | None = None,
) -> Token:
    scopes = frozenset(scopes)
    unknown = scopes - set(SCOPES)
    if unknown:
        raise TokenConfigError(
            f"{where}: token {name!r} has unknown scopes {sorted(unknown)}; "
            f"known scopes: {', '.join(SCOPES)}"
        )
    if not secret:
        raise TokenConfigError(f"{where}: token {name!r} is empty")
    limited = None
    if pipelines is not None:
        limited = frozenset(pipelines)
        if not limited or not all(limited):
            raise TokenConfigError(
                f"{where}: token {name!r} has an empty pipelines list or name; "
                "leave pipelines out to reach every pipeline"
            )
    return Token(name=name, digest=_digest(secret), scopes=scopes, pipelines=limited)


def parse_lines(text: str, where: str, separators: str = "\n") -> list[Token]:
    """Read tokens in the line format: ``name scopes token [pipelines]`` or a bare token."""
    for separator in separators[1:]:
        text = text.replace(separator, "\n")
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) == 1:
            tokens.append(make_token(f"token-{number}", fields[0], SCOPES, where))
        elif len(fields) in (3, 4):
            name, scopes, secret = fields[:3]
            pipelines = fields[3].split(",") if len(fields) == 4 else None
            tokens.append(
                make_token(name, secret, scopes.split(","), f"{where} line {number}", pipelines)
            )
        else:
            raise TokenConfigError(
                f"{where} line {number}: expected 'name scopes token [pipelines]' or a bare "
                f"token, found {len(fields)} fields"
            )
    return tokens


def parse_yaml(text: str, where: str) -> list[Token]:
    """Read tokens from YAML: a ``tokens:`` list (or a bare list) of name/token/scopes maps."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TokenConfigError(f"{where}: is not valid YAML: {error}") from None
    if isinstance(data, dict):
        data = data.get("tokens")
    if not isinstance(data, list):
        raise TokenConfigError(f"{where}: must hold a 'tokens:' list of name/token/scopes maps")
    tokens = []
    for number, entry in enumerate(data):
        place = f"{where} tokens[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            raise TokenConfigError(f"{place}: needs a 'token' string")
        scopes = entry.get("scopes", list(SCOPES))
        if isinstance(scopes, str):
            scopes = [scopes]
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise TokenConfigError(f"{place}: 'scopes' must be a list of scope names")
        pipelines = entry.get("pipelines")
        if isinstance(pipelines, str):
            pipelines = [pipelines]
        if pipelines is not None and not (
            isinstance(pipelines, list) and all(isinstance(p, str) for p in pipelines)
        ):
            raise TokenConfigError(f"{place}: 'pipelines' must be a list of pipeline names")
        name = str(entry.get("name") or f"token-{number}")
        tokens.append(make_token(name, entry["token"], scopes, place, pipelines))
    return tokens


def load_tokens(tokens_file: Path | None, inline: str | None) -> list[Token]:
    """All configured tokens, from the file and the inline setting."""
    tokens: list[Token] = []
    if tokens_file is not None:
        path = Path(tokens_file).expanduser()
        try:
            text = path.read_text()
        except OSError as error:
            raise TokenConfigError(
                f"tokens file {path}: cannot be read: {error.strerror}"
            ) from None
        if path.suffix in (".yaml", ".yml"):
            tokens.extend(parse_yaml(text, f"tokens file {path}"))
        else:
            tokens.extend(parse_lines(text, f"tokens file {path}"))
    if inline:
        tokens.extend(parse_lines(inline, "WORKFLOW_BUCKETS_TOKENS", separators="\n;"))
    return tokens


class Authenticator:
    """Checks a presented token against the configured ones, or as a signed work token."""

    def __init__(
        self, tokens: list[Token], signing_key: str | None = None, leeway: float = 0.0
    ) -> None:
        self.tokens = tokens
        self.signing_key = signing_key or None
        self.leeway = leeway

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or self.signing_key is not None

    def grant(self, presented: str) -> Grant:
        """What ``presented`` may do; ``Refused`` (a message without the token) if nothing."""
        token = self.identify(presented)
        if token is not None:
            return Grant.of(token)
        if self.signing_key is not None and looks_like_work_token(presented):
            try:
                return Grant.of(verify(self.signing_key, presented, leeway=self.leeway))
            except WorkTokenError as error:
                raise Refused(str(error)) from None
        raise Refused("the access token is not valid for this server")

    def identify(self, presented: str) -> Token | None:
        """The token matching ``presented``; every token is compared, in constant time."""
        digest = _digest(presented)
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def presented_token(headers: Any) -> str | None:
    """The token a request carries in ``x-access-token`` or ``Authorization: Bearer``."""
    token: str | None = headers.get("x-access-token")
    if token:
        return token.strip()
    authorization: str | None = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
