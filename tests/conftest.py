"""Shared pytest set-up: the real services tests run against are plugins in tests/fixtures."""

pytest_plugins = [
    "fixtures.skipping",
    "pytester",
    "fixtures.workspace",
    "fixtures.postgres",
    "fixtures.buckets",
    "fixtures.cluster",
    "fixtures.operator",
    "fixtures.figures",
    "fixtures.upstream",
]
