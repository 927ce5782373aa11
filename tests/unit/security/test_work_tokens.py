"""Work tokens: minted for one record and attempt, refused once expired, forged or changed."""

from __future__ import annotations

import time

import jwt
import pytest

from workflow.worktokens import WorkTokenError, check_key, looks_like_work_token, mint, verify

KEY = "k" * 40


def test_a_minted_token_names_its_record_attempt_and_expiry() -> None:
    token = mint(KEY, record="uid-1", attempt=3, lifetime=120, work="team-a/mean", now=1000)
    assert looks_like_work_token(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "iss": "workflow-operator",
        "aud": "buckets",
        "sub": "uid-1",
        "att": 3,
        "iat": 1000,
        "exp": 1120,
        "work": "team-a/mean",
    }
    grant = verify(KEY, mint(KEY, record="uid-1", attempt=3, lifetime=120))
    assert (grant.record, grant.attempt, grant.work) == ("uid-1", 3, None)
    assert "uid-1" in grant.name and "attempt 3" in grant.name


def test_an_expired_token_is_refused_unless_within_the_leeway() -> None:
    token = mint(KEY, record="uid-1", attempt=1, lifetime=60, now=time.time() - 100)
    with pytest.raises(WorkTokenError, match="has expired"):
        verify(KEY, token)
    assert verify(KEY, token, leeway=60).record == "uid-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda claims: jwt.encode(claims, "x" * 40, algorithm="HS256"), "signature does not"),
        (lambda claims: jwt.encode(claims, None, algorithm="none"), "not valid"),
        (
            lambda claims: jwt.encode({**claims, "aud": "other"}, KEY, algorithm="HS256"),
            "not valid",
        ),
        (
            lambda claims: jwt.encode({**claims, "att": "1"}, KEY, algorithm="HS256"),
            "'att' claim",
        ),
        (
            lambda claims: jwt.encode(
                {k: v for k, v in claims.items() if k != "att"}, KEY, algorithm="HS256"
            ),
            "lacks the 'att' claim",
        ),
    ],
)
def test_forged_or_changed_tokens_are_refused(change, message) -> None:
    claims = jwt.decode(
        mint(KEY, record="uid-1", attempt=1, lifetime=60), options={"verify_signature": False}
    )
    with pytest.raises(WorkTokenError, match=message):
        verify(KEY, change(claims))


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        check_key("short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint("short", record="r", attempt=1, lifetime=1)
