"""Helpers shared by the tests of the HTTP rules: fixed times, header builders, storage and lookup
shortcuts."""

from __future__ import annotations

from fastapi_cachekit.fastapi.http import (
    CacheControl,
    CachePolicy,
    Headers,
    LookupDecision,
    StoreDecision,
    StoredResponse,
    decide_lookup,
    decide_storage,
    format_http_date,
    parse_cache_control,
)

T0 = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
T0_HTTP = b"Tue, 14 Nov 2023 22:13:20 GMT"
DEFAULT = CachePolicy()
TTL = CachePolicy(ttl=60)
RESPECT = CachePolicy(respect_request_cache_control=True)


def cc(*lines: str) -> CacheControl:
    return parse_cache_control([line.encode() for line in lines])


def hdrs(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in fields.items()]


def store(
    headers: Headers = (),
    *,
    status: int = 200,
    method: str = "GET",
    request: Headers = (),
    policy: CachePolicy = DEFAULT,
    request_time: float = T0,
    response_time: float = T0,
) -> StoreDecision:
    return decide_storage(
        method,
        request,
        status,
        headers,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )


def stored(
    headers: Headers = (),
    body: bytes = b"body",
    *,
    status: int = 200,
    request: Headers = (),
    policy: CachePolicy = DEFAULT,
    at: float = T0,
) -> StoredResponse:
    decision = store(headers, status=status, request=request, policy=policy, response_time=at)
    assert decision.plan is not None, decision.reason
    entry = decision.plan.entry(body)
    assert entry is not None
    return entry


def lookup(
    entry: StoredResponse,
    request: Headers = (),
    *,
    policy: CachePolicy = DEFAULT,
    now: float = T0,
) -> LookupDecision:
    return decide_lookup(entry, request, policy=policy, now=now)


def names(headers: Headers) -> list[bytes]:
    return [name for name, _ in headers]


EXPLICIT = hdrs(cache_control="max-age=60")
AUTH = hdrs(authorization="Bearer secret")


def validated_entry() -> StoredResponse:
    return stored(
        hdrs(
            cache_control="max-age=60",
            etag='"v1"',
            last_modified=format_http_date(T0 - 100).decode(),
            content_type="text/plain",
            content_location="/doc",
            expires=format_http_date(T0 + 60).decode(),
            vary="Accept",
        )
    )
