"""CacheMiddleware: storing, refusing, serving hits, conditionals, HEAD, options and wiring.

Through httpx's ASGITransport on tiny inline apps; time is a FakeClock, so nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit import CacheService, ConfigurationError
from fastapi_cachekit.fastapi.dependencies import setup_cache
from fastapi_cachekit.fastapi.http import format_http_date, generate_etag
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from tests.backend_kinds import new_backend

from .middleware_support import T0, Harness, Origin, cache_status, is_hit

# --- storing and serving ------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("http_backend")


async def test_add_middleware_without_arguments_stores_only_explicit_freshness() -> None:
    app = FastAPI()
    calls = {"fresh": 0, "plain": 0}

    @app.get("/fresh")
    async def fresh(response: Response) -> dict[str, int]:
        calls["fresh"] += 1
        response.headers["cache-control"] = "max-age=60"
        return {"n": calls["fresh"]}

    @app.get("/plain")
    async def plain() -> dict[str, int]:
        calls["plain"] += 1
        return {"n": calls["plain"]}

    service = setup_cache(app, CacheService(new_backend()))
    app.add_middleware(CacheMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first, second = await client.get("/fresh"), await client.get("/fresh")
        unstored = [await client.get("/plain") for _ in range(2)]
    assert first.json() == second.json() == {"n": 1}
    assert cache_status(first) == "fastapi-cachekit; fwd=uri-miss; stored"
    assert is_hit(second)
    assert [r.json() for r in unstored] == [{"n": 1}, {"n": 2}]
    assert cache_status(unstored[1]) == "fastapi-cachekit; fwd=uri-miss"
    assert calls == {"fresh": 1, "plain": 2}
    await service.close()


async def test_hit_never_enters_the_app_and_carries_age_and_cache_status() -> None:
    origin = Origin(b"page")
    async with Harness(origin.app) as h:
        miss = await h.get()
        h.clock.advance(5)
        hit = await h.get()
    assert origin.calls == 1
    assert hit.content == miss.content == b"page"
    assert hit.headers["age"] == "5"
    assert cache_status(hit) == "fastapi-cachekit; hit; ttl=55"
    assert "age" not in miss.headers


async def test_first_response_gets_the_generated_etag_the_hits_carry() -> None:
    origin = Origin(b"page")
    async with Harness(origin.app) as h:
        miss, hit = await h.get(), await h.get()
    assert miss.headers["etag"] == hit.headers["etag"] == generate_etag(b"page").decode()
    assert cache_status(miss).endswith("; stored")


async def test_app_etag_is_kept() -> None:
    origin = Origin(headers=[("cache-control", "max-age=60"), ("etag", 'W/"v1"')])
    async with Harness(origin.app) as h:
        miss, hit = await h.get(), await h.get()
    assert miss.headers.get_list("etag") == hit.headers.get_list("etag") == ['W/"v1"']


async def test_ttl_fills_missing_freshness_but_never_overrides_the_response() -> None:
    plain, short = Origin(b"plain", headers=[]), Origin(b"short", headers=[("expires", "0")])
    async with Harness(plain.app, ttl=timedelta(seconds=60)) as h:
        await h.get()
        h.clock.advance(59)
        assert is_hit(await h.get())
        h.clock.advance(2)
        assert not is_hit(await h.get())
    assert plain.calls == 2
    async with Harness(short.app, ttl=60) as h:
        await h.get()
        await h.get()
    assert short.calls == 2  # `Expires: 0` says stale at once: ttl does not override it


async def test_expires_and_heuristic_freshness_are_stored_without_ttl() -> None:
    expires = Origin(headers=[("expires", format_http_date(T0 + 30).decode())])
    modified = Origin(headers=[("last-modified", format_http_date(T0 - 1000).decode())])
    for origin, lifetime in ((expires, 30), (modified, 100)):
        async with Harness(origin.app) as h:
            await h.get()
            h.clock.advance(lifetime - 1)
            assert is_hit(await h.get())
            h.clock.advance(2)
            await h.get()
        assert origin.calls == 2


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, [("cache-control", "no-store, max-age=60")]),
        (200, [("cache-control", "private, max-age=60")]),
        (200, [("cache-control", "max-age=60"), ("set-cookie", "session=1")]),
        (200, [("cache-control", "max-age=60"), ("vary", "*")]),
        (500, []),
        (302, [("location", "/elsewhere")]),
        (206, [("cache-control", "max-age=60"), ("content-range", "bytes 0-4/10")]),
    ],
)
async def test_refused_responses_are_not_stored(
    status: int, headers: list[tuple[str, str]]
) -> None:
    origin = Origin(status=status, headers=headers)
    async with Harness(origin.app, ttl=60) as h:
        first, second = await h.get(), await h.get()
    assert origin.calls == 2
    assert cache_status(first) == cache_status(second) == "fastapi-cachekit; fwd=uri-miss"


async def test_explicitly_fresh_302_is_stored() -> None:
    origin = Origin(status=302, headers=[("location", "/x"), ("cache-control", "max-age=60")])
    async with Harness(origin.app) as h:
        await h.client.get("/")
        hit = await h.client.get("/")
    assert (origin.calls, hit.status_code, hit.headers["location"]) == (1, 302, "/x")


async def test_store_set_cookie_opts_in() -> None:
    origin = Origin(headers=[("cache-control", "max-age=60"), ("set-cookie", "a=1")])
    async with Harness(origin.app, store_set_cookie=True) as h:
        await h.get()
        hit = await h.get()
    assert origin.calls == 1
    assert hit.headers["set-cookie"] == "a=1"


async def test_qualified_private_strips_the_field_from_the_stored_copy_only() -> None:
    headers = [("cache-control", 'max-age=60, private="set-cookie"'), ("set-cookie", "a=1")]
    origin = Origin(headers=headers)
    async with Harness(origin.app) as h:
        miss, hit = await h.get(), await h.get()
    assert origin.calls == 1
    assert miss.headers["set-cookie"] == "a=1"
    assert "set-cookie" not in hit.headers


async def test_hop_by_hop_and_connection_named_fields_are_not_replayed() -> None:
    headers = [("cache-control", "max-age=60"), ("connection", "x-trace"), ("x-trace", "1")]
    headers += [("x-other", "kept"), ("keep-alive", "timeout=5")]
    origin = Origin(headers=headers)
    async with Harness(origin.app) as h:
        await h.get()
        hit = await h.get()
    assert hit.headers["x-other"] == "kept"
    for name in ("connection", "x-trace", "keep-alive"):
        assert name not in hit.headers


async def test_cacheable_status_404_is_stored_in_ttl_mode() -> None:
    origin = Origin(b"nope", status=404, headers=[])
    async with Harness(origin.app, ttl=60) as h:
        await h.get("/missing")
        hit = await h.get("/missing")
    assert (origin.calls, hit.status_code, hit.content) == (1, 404, b"nope")


async def test_corrupt_stored_bytes_are_a_miss_and_get_replaced() -> None:
    origin = Origin(b"page")
    async with Harness(origin.app) as h:
        await h.get()
        key = h.middleware.config.namespace
        stored = await h.cache.get_raw(_default_key(), key)
        assert stored is not None
        await h.cache.set_raw(_default_key(), b"garbage", 60, key)
        again = await h.get()
        hit = await h.get()
    assert origin.calls == 2
    assert again.content == hit.content == b"page"
    assert is_hit(hit)


def _default_key(path: str = "/") -> str:
    from fastapi_cachekit.fastapi.http import request_key

    return request_key("http", "testserver", path, b"")


async def test_default_key_ignores_query_parameter_order() -> None:
    origin = Origin()
    async with Harness(origin.app) as h:
        await h.get("/p?b=2&a=1")
        hit = await h.get("/p?a=1&b=2")
        other = await h.get("/p?a=1&b=3")
    assert is_hit(hit)
    assert not is_hit(other)
    assert origin.calls == 2


async def test_key_func_replaces_the_default_key() -> None:
    origin = Origin()

    def key(request: Request) -> str:
        return f"page-{request.url.path}"

    async with Harness(origin.app, key_func=key) as h:
        await h.get("/a?utm=1")
        hit = await h.get("/a?utm=2")
        assert await h.cache.get_raw("page-/a", "http") is not None
    assert is_hit(hit)
    assert origin.calls == 1


async def test_namespace_option_and_invalidate_namespace() -> None:
    origin = Origin()
    async with Harness(origin.app, namespace="pages") as h:
        await h.get()
        assert await h.cache.invalidate_namespace("pages") >= 1
        await h.get()
    assert origin.calls == 2


async def test_tags_func_tags_responses_and_invalidate_tags_drops_them() -> None:
    origin = Origin()

    def tags(request: Request) -> list[str]:
        return [f"page:{request.url.path.strip('/')}"]

    async with Harness(origin.app, tags_func=tags) as h:
        await h.get("/a")
        await h.get("/b")
        assert await h.cache.invalidate_tags(["page:a"]) == 1
        a, b = await h.get("/a"), await h.get("/b")
    assert (is_hit(a), is_hit(b)) == (False, True)
    assert origin.calls == 3


async def test_failing_tags_func_skips_storing_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    origin = Origin()

    def tags(request: Request) -> list[str]:
        raise RuntimeError("boom")

    async with Harness(origin.app, tags_func=tags) as h:
        first, second = await h.get(), await h.get()
    assert first.status_code == second.status_code == 200
    assert origin.calls == 2
    assert "tags_func failed" in caplog.text


# --- include / exclude ---------------------------------------------------------------------


async def test_include_and_exclude_globs_choose_the_cached_paths() -> None:
    origin = Origin(headers=[])
    options: dict[str, Any] = {"ttl": 60, "include": ["/products/*"], "exclude": ["*/secret*"]}
    async with Harness(origin.app, **options) as h:
        for path in ("/products/1", "/products/a/b", "/other", "/products/secret/1"):
            await h.get(path)
            second = await h.get(path)
            assert is_hit(second) is (path.startswith("/products/") and "secret" not in path)
        skipped = await h.get("/other")
    assert "cache-status" not in skipped.headers  # not cached paths pass through untouched
    assert origin.calls == 1 + 1 + 2 + 2 + 1


# --- conditionals and HEAD -------------------------------------------------------------------


async def test_if_none_match_gets_a_304_from_a_fresh_stored_response() -> None:
    origin = Origin(headers=[("cache-control", "max-age=60"), ("etag", '"v1"'), ("vary", "x-a")])
    async with Harness(origin.app) as h:
        await h.get()
        responses = [
            await h.get(if_none_match=value) for value in ('"v1"', 'W/"v1"', '"x", "v1"', "*")
        ]
        other = await h.get(if_none_match='"v2"')
    for response in responses:
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == '"v1"'
        assert response.headers["cache-control"] == "max-age=60"
        assert response.headers["vary"] == "x-a"
        assert "date" in response.headers
        assert "content-type" not in response.headers
        assert is_hit(response)
    assert other.status_code == 200
    assert origin.calls == 1


async def test_if_modified_since_gets_a_304_without_if_none_match() -> None:
    modified = format_http_date(T0 - 100).decode()
    origin = Origin(headers=[("cache-control", "max-age=60"), ("last-modified", modified)])
    async with Harness(origin.app) as h:
        await h.get()
        not_modified = await h.get(if_modified_since=format_http_date(T0).decode())
        modified_since = await h.get(if_modified_since=format_http_date(T0 - 200).decode())
    assert (not_modified.status_code, modified_since.status_code) == (304, 200)
    assert origin.calls == 1


async def test_head_is_answered_from_the_stored_get_without_a_body() -> None:
    origin = Origin(b"0123456789")
    async with Harness(origin.app) as h:
        await h.get()
        head = await h.head()
    assert origin.calls == 1
    assert head.content == b""
    assert head.headers["content-length"] == "10"
    assert is_hit(head)


async def test_a_head_miss_is_forwarded_and_not_stored() -> None:
    origin = Origin(b"0123456789")
    async with Harness(origin.app) as h:
        head = await h.head()
        get = await h.get()
    assert [r.method for r in origin.requests] == ["HEAD", "GET"]
    assert cache_status(head) == "fastapi-cachekit; fwd=uri-miss"
    assert cache_status(get).endswith("stored")


# --- privacy rules ---------------------------------------------------------------------------


async def test_authorization_requests_are_stored_only_when_the_response_allows() -> None:
    origin = Origin()
    async with Harness(origin.app) as h:
        await h.get(authorization="Bearer a")
        await h.get(authorization="Bearer a")
        assert origin.calls == 2
        origin.headers = [("cache-control", "public, max-age=60")]
        await h.get("/public", authorization="Bearer a")
        hit = await h.get("/public", authorization="Bearer b")
    assert is_hit(hit)
    assert origin.calls == 3


async def test_an_authorized_request_is_not_served_a_response_stored_for_anyone() -> None:
    origin = Origin()
    async with Harness(origin.app) as h:
        await h.get()
        authorized = await h.get(authorization="Bearer a")
    assert not is_hit(authorized)
    assert origin.calls == 2


async def test_cache_authorized_opts_in() -> None:
    origin = Origin()
    async with Harness(origin.app, cache_authorized=True) as h:
        await h.get(authorization="Bearer a")
        hit = await h.get(authorization="Bearer b")
    assert is_hit(hit)
    assert origin.calls == 1


@pytest.mark.parametrize("field", ["cookie", "x-api-key", "authorization"])
async def test_ttl_mode_private_request_headers_are_neither_served_nor_stored(field: str) -> None:
    origin = Origin(headers=[])
    async with Harness(origin.app, ttl=60) as h:
        await h.get(**{field: "me"})
        await h.get()
        personal = await h.get(**{field: "me"})
        anonymous = await h.get()
    assert not is_hit(personal)
    assert is_hit(anonymous)
    assert origin.calls == 3


async def test_ttl_mode_private_request_headers_are_configurable_and_public_lifts_them() -> None:
    origin = Origin(headers=[])
    async with Harness(origin.app, ttl=60, private_request_headers=["X-Tenant"]) as h:
        await h.get("/a", cookie="c")
        assert is_hit(await h.get("/a", cookie="d"))  # Cookie is no longer on the list
        await h.get("/b", x_tenant="t")
        assert not is_hit(await h.get("/b", x_tenant="t"))
        origin.headers = [("cache-control", "public")]
        await h.get("/c", x_tenant="t")
        assert is_hit(await h.get("/c", x_tenant="u"))


async def test_cache_private_requests_opts_in() -> None:
    origin = Origin(headers=[])
    async with Harness(origin.app, ttl=60, cache_private_requests=True) as h:
        await h.get(cookie="a")
        assert is_hit(await h.get(cookie="b"))


async def test_client_cache_directives_cannot_bust_the_cache_by_default() -> None:
    origin = Origin()
    async with Harness(origin.app) as h:
        await h.get()
        responses = [
            await h.get(cache_control="no-cache"),
            await h.get(cache_control="max-age=0"),
            await h.get(pragma="no-cache"),
            await h.get(cache_control="no-store"),
        ]
    assert all(is_hit(r) for r in responses)
    assert origin.calls == 1


# --- pass-through fidelity -------------------------------------------------------------------


async def test_uncached_responses_keep_every_header_line() -> None:
    origin = Origin(b"x", headers=[("set-cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")])
    async with Harness(origin.app, ttl=60) as h:
        get = await h.get()
        post = await h.request("POST")
    expected = [("content-length", "1"), ("set-cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")]
    assert list(post.headers.multi_items()) == expected  # not even Cache-Status is added
    assert list(get.headers.multi_items()) == [
        *expected,
        ("cache-status", "fastapi-cachekit; fwd=uri-miss"),
    ]


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": float("inf")},
        {"ttl": 10**400},
        {"ttl": 2**31 + 1},
        {"ttl": True},
        {"ttl": "60"},
        {"include": "/products/*"},
        {"exclude": [1]},
        {"max_body_bytes": -1},
        {"max_body_bytes": 1.5},
        {"namespace": ""},
        {"namespace": "a\nb"},
        {"key_func": "not callable"},
        {"tags_func": 3},
        {"clock": 1.0},
        {"cache": object()},
        {"private_request_headers": "Cookie"},
        {"private_request_headers": ["bad name"]},
        {"cache_status_name": ""},
        {"cache_status_name": "caché"},
    ],
)
def test_bad_options_are_rejected_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CacheMiddleware(Origin().app, **options)


async def test_cache_status_name_is_configurable() -> None:
    origin = Origin()
    async with Harness(origin.app, cache_status_name="edge") as h:
        miss, hit = await h.get(), await h.get()
    assert cache_status(miss) == "edge; fwd=uri-miss; stored"
    assert cache_status(hit) == "edge; hit; ttl=60"


async def test_without_a_cache_or_an_app_in_scope_the_request_fails_clearly() -> None:
    middleware = CacheMiddleware(Origin().app)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(ConfigurationError, match="pass cache="):
            await client.get("/")


async def test_a_service_registered_after_the_first_request_is_used_from_the_next() -> None:
    app = FastAPI()
    calls = []

    @app.get("/")
    async def index(response: Response) -> int:
        calls.append(1)
        response.headers["cache-control"] = "max-age=60"
        return len(calls)

    app.add_middleware(CacheMiddleware)
    first = setup_cache(app, CacheService(new_backend()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/")).json() == 1
        second = setup_cache(app, CacheService(new_backend()))  # a test's override, say
        assert (await client.get("/")).json() == 2
        assert is_hit(await client.get("/"))
    assert (await first.get_stats()).total_entries == 1
    assert (await second.get_stats()).total_entries == 1
    await first.close()
    await second.close()


async def test_the_apps_service_is_found_lazily() -> None:
    app = FastAPI()

    @app.get("/")
    async def index(response: Response) -> str:
        response.headers["cache-control"] = "max-age=60"
        return "x"

    app.add_middleware(CacheMiddleware)
    service = setup_cache(app, CacheService(new_backend()))  # after add_middleware: lazy
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/")
        assert is_hit(await client.get("/"))
    assert (await service.get_stats()).total_entries == 1
    await service.close()
