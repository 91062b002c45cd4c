"""Request keys, path globs and the URLs an unsafe method invalidates (RFC 9111 §2, §4.4):
`http/keys.py`."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cachekit.fastapi.http import (
    Headers,
    PathFilter,
    TargetURL,
    canonical_url,
    invalidation_targets,
    request_key,
)

from .support import hdrs


def _targets(
    method: str = "POST",
    status: int = 201,
    headers: Headers = (),
    path: str = "/items",
    query: bytes = b"",
) -> list[TargetURL]:
    return invalidation_targets(method, status, "https", "api.example.com", path, query, headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PURGE"])
def test_unsafe_methods_invalidate_the_target(method: str) -> None:
    assert _targets(method, 200, query=b"b=2&a=1") == [
        TargetURL("https", "api.example.com", "/items", b"b=2&a=1")
    ]


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 200), ("HEAD", 200), ("POST", 404), ("DELETE", 500), ("PUT", 101)],
)
def test_safe_methods_and_errors_invalidate_nothing(method: str, status: int) -> None:
    assert _targets(method, status) == []


def test_location_and_content_location_on_the_same_origin_are_invalidated() -> None:
    headers = hdrs(location="/items/7?x=1", content_location="../other")
    targets = _targets("POST", 201, headers, path="/items/new")
    assert [(t.path, t.query) for t in targets] == [
        ("/items/new", b""),
        ("/items/7", b"x=1"),
        ("/other", b""),
    ]
    absolute = hdrs(location="HTTPS://API.example.com:443/items/8")
    assert _targets(headers=absolute)[1].path == "/items/8"


def test_cross_origin_locations_are_ignored() -> None:
    for location in ["https://evil.example/items", "http://api.example.com/items/1", "//x.org/a"]:
        assert len(_targets(headers=hdrs(location=location))) == 1


def test_empty_or_malformed_locations_are_ignored() -> None:
    for location in ["", "   ", "http://[::1"]:
        assert len(_targets(headers=hdrs(location=location))) == 1


def test_target_keys_match_request_keys() -> None:
    target = _targets(headers=hdrs(location="/items/7?b=2&a=1"))[1]
    assert target.key == request_key("https", "api.example.com", "/items/7", b"a=1&b=2")
    assert target.canonical == "https://api.example.com/items/7?a=1&b=2"


def test_request_key_is_stable_across_processes() -> None:
    key = request_key("https", "Example.com", "/items", b"b=2&a=1")
    expected = hashlib.blake2b(b"https://example.com/items?a=1&b=2", digest_size=16).hexdigest()
    assert key == expected
    assert len(key) == 32


def test_request_key_normalises_scheme_host_port_and_query_encoding() -> None:
    base = request_key("http", "example.com", "/p", b"a=%41&b=x+y")
    assert request_key("HTTP", "EXAMPLE.com:80", "/p", b"b=x%20y&a=A") == base
    assert request_key("http", "example.com:8080", "/p", b"a=A&b=x y") != base
    assert request_key("https", "example.com:443", "/p") == request_key(
        "https", "example.com", "/p"
    )


def test_request_key_distinguishes_what_matters() -> None:
    base = request_key("http", "h", "/p", b"a=1")
    assert request_key("https", "h", "/p", b"a=1") != base
    assert request_key("http", "h2", "/p", b"a=1") != base
    assert request_key("http", "h", "/q", b"a=1") != base
    assert request_key("http", "h", "/p", b"a=2") != base
    # Repeated names keep their order; a decoded "?" in the path is not a query.
    assert request_key("http", "h", "/p", b"a=1&a=2") != request_key("http", "h", "/p", b"a=2&a=1")
    assert request_key("http", "h", "/p?a=1") != base
    assert canonical_url("http", "h", "/p?a=1") == "http://h/p%3Fa=1"


def test_request_key_is_bounded() -> None:
    assert len(request_key("http", "h", "/" + "x" * 10_000, b"q=" + b"y" * 10_000)) == 32


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.text(max_size=4)), max_size=6).map(dict))
def test_request_key_ignores_parameter_order(params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    forward = urlencode(list(params.items())).encode()
    backward = urlencode(list(reversed(params.items()))).encode()
    assert request_key("http", "h", "/p", forward) == request_key("http", "h", "/p", backward)


def test_path_filter_globs() -> None:
    products = PathFilter.compile(include=["/products/*", "/health"], exclude=["*/private/*"])
    assert products.allows("/products/1")
    assert products.allows("/products/a/b/c")
    assert products.allows("/health")
    assert not products.allows("/healthz")
    assert not products.allows("/products/private/1")
    assert not products.allows("/orders")
    everything = PathFilter.compile(exclude=["/admin*"])
    assert everything.allows("/anything")
    assert not everything.allows("/admin/cache/stats")
    assert not PathFilter.compile(include=[]).allows("/")
    literal = PathFilter.compile(include=["/a.b/[x]?"])
    assert literal.allows("/a.b/[x]?")
    assert not literal.allows("/aXb/x")
    assert PathFilter.compile(include=["/a\\b/*"]).allows("/a\\b/c")


# A backtracking matcher needs minutes for this path (12 s at a sixth of its length); the
# linear one microseconds. The timeout only stops a regression from hanging the suite.
@pytest.mark.timeout(60)
def test_path_filter_matching_is_linear_in_a_hostile_path() -> None:
    stars = PathFilter.compile(include=["/a/*/b/*/c/*/d"], exclude=["*x*y*z*w"])
    hostile = "/a/" + "/b/" * 6000 + "/c/" * 6000
    assert not stars.allows(hostile)
    assert stars.allows(hostile + "/d")
