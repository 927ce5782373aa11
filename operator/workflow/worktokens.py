"""Work tokens: one buckets token per attempt, minted by the operator, checked by buckets.

Every Work pod used to get the same buckets token with the read and write
scopes, so one Work could list and overwrite another's record. Now the
operator mints, for each attempt, a token that names the Work's buckets
record and the attempt and expires when the attempt cannot be running any
more; buckets lets it read and update that record only (``buckets.tenancy``).

The token is a JSON Web Token (RFC 7519) signed with HMAC-SHA256 (``HS256``)
under a key that only the operator and buckets hold (both read it from the
same Secret). buckets verifies it without a lookup: no table of issued
tokens, nothing to keep in step between replicas. PyJWT makes and checks it:
the algorithm is pinned to HS256 when checking (a token cannot pick its own,
nor ``none``), the signature is compared in constant time, and ``exp``,
``iat``, ``aud`` and ``iss`` are required and checked. A JWT rather than a
home-made ``payload.hmac`` string because the format, and the library that
checks it, are already audited and any JWT tool can read a token's claims
when someone has to look at one.

Claims: ``iss`` ``workflow-operator``, ``aud`` ``buckets``, ``sub`` the
buckets record id, ``att`` the attempt, ``iat`` and ``exp`` (Unix seconds),
and ``work`` (``namespace/name``, for messages only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ISSUER = "workflow-operator"
AUDIENCE = "buckets"
ALGORITHM = "HS256"
#: Shortest signing key accepted, in bytes (RFC 7518 asks for the hash size, 256 bits).
MIN_KEY_BYTES = 32


class WorkTokenError(ValueError):
    """A work token that cannot be used; the message says why and never holds the token."""


@dataclass(frozen=True)
class WorkGrant:
    """What a valid work token allows: reading and updating one record, for one attempt."""

    record: str
    attempt: int
    expires: float
    work: str | None = None

    @property
    def name(self) -> str:
        """How messages and logs name the token (never its value)."""
        return f"work token of record {self.record!r} (attempt {self.attempt})"


def check_key(key: str, where: str = "signing key") -> str:
    """``key`` if it is long enough to sign with; ValueError naming ``where`` otherwise."""
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ValueError(
            f"{where}: must be at least {MIN_KEY_BYTES} bytes long (HS256 needs a key as long "
            "as its hash); generate one with e.g. `openssl rand -base64 48`"
        )
    return key


def mint(
    key: str,
    *,
    record: str,
    attempt: int,
    lifetime: float,
    work: str | None = None,
    now: float | None = None,
) -> str:
    """A token for ``attempt`` of the Work stored as ``record``, valid ``lifetime`` seconds."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, not {attempt}")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": record,
        "att": attempt,
        "iat": issued,
        "exp": issued + max(int(lifetime), 1),
    }
    if work:
        claims["work"] = work
    return jwt.encode(claims, check_key(key), algorithm=ALGORITHM)


def looks_like_work_token(presented: str) -> bool:
    """Whether ``presented`` has the shape of a JWT (three base64url parts, a JSON header)."""
    return presented.startswith("eyJ") and presented.count(".") == 2


def verify(key: str, presented: str, *, leeway: float = 0.0) -> WorkGrant:
    """The grant of a valid work token; ``WorkTokenError`` saying why otherwise.

    ``leeway`` seconds are allowed for clocks that differ between the
    operator and buckets.
    """
    try:
        claims = jwt.decode(
            presented,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "att"]},
        )
    except jwt.ExpiredSignatureError:
        raise WorkTokenError("the work token has expired (its attempt is over)") from None
    except jwt.InvalidSignatureError:
        raise WorkTokenError(
            "the work token's signature does not match: it was changed or not made "
            "by this server's operator"
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise WorkTokenError(f"the work token lacks the {error.claim!r} claim") from None
    except jwt.InvalidTokenError as error:
        raise WorkTokenError(f"the work token is not valid: {error}") from None
    attempt = claims["att"]
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise WorkTokenError("the work token's 'att' claim must be an attempt number, 1 or more")
    work = claims.get("work")
    return WorkGrant(
        record=claims["sub"],
        attempt=attempt,
        expires=float(claims["exp"]),
        work=work if isinstance(work, str) else None,
    )
