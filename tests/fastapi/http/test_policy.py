"""The cache policy: option validation and the request fields a lookup reads (`http/policy.py`)."""

from __future__ import annotations

import pytest

from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.http import CachePolicy

from .support import DEFAULT, RESPECT, TTL


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -5},
        {"heuristic_fraction": 2},
        {"max_heuristic_lifetime": -1},
        {"keep_stale": -1},
        {"max_body_bytes": -1},
    ],
)
def test_policy_rejects_invalid_options(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CachePolicy(**options)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    assert not DEFAULT.ttl_mode
    assert TTL.ttl_mode
    assert DEFAULT.private_request_headers == {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"x-api-key",
    }
    assert b"if-none-match" in DEFAULT.lookup_fields


def test_policy_lookup_fields_are_only_those_the_options_use() -> None:
    assert DEFAULT.lookup_fields == {b"authorization", b"if-none-match", b"if-modified-since"}
    assert b"cookie" in TTL.lookup_fields
    assert b"cache-control" not in TTL.lookup_fields
    assert {b"cache-control", b"pragma"} <= RESPECT.lookup_fields
    assert b"cookie" not in RESPECT.lookup_fields
