"""Access tokens: who may call buckets, and for what.

When any token is configured every endpoint except ``/healthz``,
``GET``/``HEAD /version`` and the API documentation requires one, sent as
``x-access-token: <token>`` (what the public client sends) or
``Authorization: Bearer <token>``. A missing token is answered 401, a wrong
one or one without the needed scope 403.

Scopes: ``read`` (views, status, audit counts, single works) and ``write``
(deposit, withdraw, update, delete and the audits that change works).

Tokens come from ``tokens_file`` and/or ``WORKFLOW_BUCKETS_TOKENS``.
A file whose name ends in ``.yaml`` or ``.yml`` is YAML::

    tokens:
      - name: operator
        token: "change-me"
        scopes: [read, write]
      - name: dashboard
        token: "also-change-me"
        scopes: [read]

Any other file, and the environment variable, use one entry per line
(``#`` starts a comment; in the variable ``;`` also separates entries)::

    # name     scopes      token
    operator   read,write  change-me
    dashboard  read        also-change-me

A line holding only a token grants ``read`` and ``write``. Tokens are
compared in constant time against every configured token; only token names
ever reach logs and error messages.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

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

    def __repr__(self) -> str:
        return f"Token(name={self.name!r}, scopes={sorted(self.scopes)})"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def make_token(name: str, secret: str, scopes: Iterable[str], where: str) -> Token:
    scopes = frozenset(scopes)
    unknown = scopes - set(SCOPES)
    if unknown:
        raise TokenConfigError(
            f"{where}: token {name!r} has unknown scopes {sorted(unknown)}; "
            f"known scopes: {', '.join(SCOPES)}"
        )
    if not secret:
        raise TokenConfigError(f"{where}: token {name!r} is empty")
    return Token(name=name, digest=_digest(secret), scopes=scopes)


def parse_lines(text: str, where: str, separators: str = "\n") -> list[Token]:
    """Read tokens in the line format: ``name scopes token`` or a bare token."""
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
        elif len(fields) == 3:
            name, scopes, secret = fields
            tokens.append(make_token(name, secret, scopes.split(","), f"{where} line {number}"))
        else:
            raise TokenConfigError(
                f"{where} line {number}: expected 'name scopes token' or a bare token, "
                f"found {len(fields)} fields"
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
        name = str(entry.get("name") or f"token-{number}")
        tokens.append(make_token(name, entry["token"], scopes, place))
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
    """Checks a presented token against the configured ones."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

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
    token = headers.get("x-access-token")
    if token:
        return token.strip()
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
