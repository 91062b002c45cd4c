"""The Cache-Status field (RFC 9211): `http/cache_status.py`."""

from __future__ import annotations

import pytest

from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.http import CacheStatus


def test_cache_status_hit() -> None:
    status = CacheStatus()
    assert status.hit(42) == b"fastapi-cachekit; hit; ttl=42"
    assert status.hit(-3) == b"fastapi-cachekit; hit; ttl=-3"


def test_cache_status_miss_stored_or_not() -> None:
    status = CacheStatus()
    assert status.forward("uri-miss", stored=True) == b"fastapi-cachekit; fwd=uri-miss; stored"
    assert status.forward("uri-miss") == b"fastapi-cachekit; fwd=uri-miss"


def test_cache_status_revalidation_and_request_forwarding() -> None:
    status = CacheStatus()
    assert status.forward("stale", fwd_status=304, ttl=60, stored=True) == (
        b"fastapi-cachekit; fwd=stale; fwd-status=304; ttl=60; stored"
    )
    assert status.forward("request", fwd_status=200) == (
        b"fastapi-cachekit; fwd=request; fwd-status=200"
    )
    assert status.forward("uri-miss", collapsed=True, detail="single flight") == (
        b'fastapi-cachekit; fwd=uri-miss; collapsed; detail="single flight"'
    )
    assert status.detail("only-if-cached") == b"fastapi-cachekit; detail=only-if-cached"


def test_cache_status_name_is_a_parameter() -> None:
    assert CacheStatus("edge/1").hit(1) == b"edge/1; hit; ttl=1"
    assert CacheStatus('my "cache"').hit(1) == b'"my \\"cache\\""; hit; ttl=1'
    with pytest.raises(ConfigurationError):
        CacheStatus("café")
    with pytest.raises(ConfigurationError):
        CacheStatus("")


def test_cache_status_rejects_unknown_fwd() -> None:
    with pytest.raises(ValueError, match="fwd must be one of"):
        CacheStatus().forward("nope")


def test_cache_status_repr() -> None:
    assert repr(CacheStatus("edge")) == "CacheStatus('edge')"
