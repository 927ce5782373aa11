"""Access tokens: the file formats, the variable, scopes, and how a token is recognised."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.buckets.auth import (
    Authenticator,
    TokenConfigError,
    load_tokens,
    presented_token,
)


def test_the_line_format_gives_names_scopes_and_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(
        "# name scopes token\n\noperator read,write s3cret-1\ndashboard read s3cret-2\n"
    )
    tokens = load_tokens(path, None)
    assert [(token.name, sorted(token.scopes)) for token in tokens] == [
        ("operator", ["read", "write"]),
        ("dashboard", ["read"]),
    ]
    authenticator = Authenticator(tokens)
    found = authenticator.identify("s3cret-2")
    assert found is not None and found.name == "dashboard"
    assert authenticator.identify("s3cret-3") is None
    assert authenticator.identify("") is None


def test_yaml_files_are_read_by_their_extension(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "tokens:\n"
        "  - name: operator\n    token: 'abc#1'\n    scopes: [read, write]\n"
        "  - name: reader\n    token: def\n    scopes: read\n"
    )
    tokens = load_tokens(path, None)
    assert [(token.name, sorted(token.scopes)) for token in tokens] == [
        ("operator", ["read", "write"]),
        ("reader", ["read"]),
    ]
    assert Authenticator(tokens).identify("abc#1") is not None


def test_the_variable_takes_entries_and_bare_tokens_separated_by_semicolons() -> None:
    tokens = load_tokens(None, "bare-token; ci write ci-token")
    authenticator = Authenticator(tokens)
    bare = authenticator.identify("bare-token")
    ci = authenticator.identify("ci-token")
    assert bare is not None and bare.scopes == {"read", "write"}
    assert ci is not None and ci.scopes == {"write"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name admin token", "unknown scopes ['admin']"),
        ("far too many fields here", "expected 'name scopes token [pipelines]' or a bare token"),
        ("ci write t0k3n ,", "token 'ci' has an empty pipelines list or name"),
    ],
)
def test_bad_token_lines_are_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(TokenConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_tokens(None, text)


def test_a_fourth_field_or_a_pipelines_key_limits_a_token_to_pipelines(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yml"
    path.write_text(
        "tokens:\n"
        "  - {name: stats, token: t1, scopes: [read, write], pipelines: [stats, stats-2]}\n"
        "  - {name: all, token: t2}\n"
    )
    stats, everything = load_tokens(path, None)
    assert stats.pipelines == {"stats", "stats-2"}
    assert everything.pipelines is None
    [line] = load_tokens(None, "ci write t3 a,b")
    assert line.pipelines == {"a", "b"} and line.scopes == {"write"}
    assert "pipelines=['a', 'b']" in repr(line) and "t3" not in repr(line)


def test_a_missing_tokens_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenConfigError, match="cannot be read"):
        load_tokens(tmp_path / "absent", None)


def test_tokens_never_appear_in_their_representation() -> None:
    [token] = load_tokens(None, "op read very-secret")
    assert "very-secret" not in repr(token)


def test_no_tokens_means_authentication_is_off() -> None:
    assert not Authenticator(load_tokens(None, None)).enabled
    assert not Authenticator(load_tokens(None, "  ;  ")).enabled


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-access-token": "t1"}, "t1"),
        ({"authorization": "Bearer t2"}, "t2"),
        ({"authorization": "bearer  t3 "}, "t3"),
        ({"authorization": "Basic dXNlcg=="}, None),
        ({}, None),
    ],
)
def test_tokens_are_taken_from_either_header(headers: dict[str, str], expected: str | None) -> None:
    assert presented_token(headers) == expected
