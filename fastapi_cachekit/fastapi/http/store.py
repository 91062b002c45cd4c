"""Whether and how to store a response (RFC 9111 §3, §3.1, §3.5, §4.2, §5.2.2; safety defaults).

`decide_storage` runs when the response starts (status and headers known, body not yet): it
either refuses, with a short reason, or returns a `StoragePlan` holding every decision
already made (stored headers, freshness lifetime, initial age, flags, Vary values), so the
middleware only buffers the body and calls `plan.entry(body)`.

Refusal reasons: `method`, `status`, `request-no-store`, `no-store`, `must-understand`,
`private`, `vary-star`, `authorization`, `private-request-header`, `body-too-large`,
`invalid-header`, `set-cookie`, `no-explicit-freshness`, `no-freshness`,
`no-cache-without-validator`, `stale-on-arrival`. Stored reasons name the freshness source:
`s-maxage`, `max-age`, `expires`, `ttl`, `heuristic`, `no-cache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .cache_control import CacheControl, parse_cache_control, request_cache_control
from .conditional import generate_etag
from .dates import format_http_date, parse_http_date
from .entry import (
    FLAG_ETAG_GENERATED,
    FLAG_MUST_REVALIDATE,
    FLAG_NO_CACHE,
    FLAG_PROXY_REVALIDATE,
    FLAG_PUBLIC,
    FLAG_S_MAXAGE,
    StoredResponse,
)
from .freshness import age_header_value, corrected_initial_age
from .headers import (
    HOP_BY_HOP,
    Header,
    HeaderList,
    Headers,
    VaryValues,
    connection_options,
    header_values,
    keyed_field_names,
    lowercase_names,
    vary_field_names,
    vary_values,
)
from .policy import UNDERSTOOD_STATUSES, CachePolicy
from .retention import freshness_lifetime, kept_for

__all__ = ["StoragePlan", "StoreDecision", "decide_storage", "storable_headers"]

_NO_BODY_STATUSES = frozenset({204, 304})
_MAX_LENGTH_DIGITS = 18
_HUGE_LENGTH = 10**_MAX_LENGTH_DIGITS


@dataclass(frozen=True, slots=True)
class StoragePlan:
    """Everything decided about a storable response except its body."""

    response: StoredResponse
    """The entry to store, but for its body (empty here) and what depends on the body."""
    content_length: int | None
    max_body_bytes: int | None
    storage_ttl: float
    """Seconds the backend should keep the entry: remaining freshness, plus the stale windows
    it may be served in, plus the revalidation window when it has validators."""

    def accepts_size(self, size: int) -> bool:
        """False once `size` body bytes are more than may be stored."""
        return self.max_body_bytes is None or size <= self.max_body_bytes

    def entry(self, body: bytes) -> StoredResponse | None:
        """The response to store with `body`; None when the body is too large or does not
        match Content-Length (an incomplete response is not stored, §3.3). Adds a generated
        strong ETag when the app sent none, and Content-Length when it was missing."""
        if not self.accepts_size(len(body)):
            return None
        if self.content_length is not None and self.content_length != len(body):
            return None
        response = self.response
        headers, flags, etag = list(response.headers), response.flags, response.etag
        if not etag:
            etag = generate_etag(body)
            headers.append((b"etag", etag))
            flags |= FLAG_ETAG_GENERATED
        if self.content_length is None and response.status not in _NO_BODY_STATUSES:
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        return response._replace(headers=tuple(headers), body=body, flags=flags, etag=etag)


@dataclass(frozen=True, slots=True)
class StoreDecision:
    """Store or not, and why (`reason` is short, for logs and tests)."""

    reason: str
    plan: StoragePlan | None = None

    @property
    def store(self) -> bool:
        """True when the response is to be stored (then `plan` is set)."""
        return self.plan is not None


def decide_storage(
    method: str,
    request_headers: Headers,
    status: int,
    response_headers: Headers,
    *,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
) -> StoreDecision:
    """Decide whether the response to a request may be stored in the shared cache.

    Only GET responses are stored (a HEAD is answered from the stored GET). `request_time` is
    when the request was passed to the app, `response_time` when its response started.
    """
    if method != "GET":
        return StoreDecision("method")
    if not 200 <= status <= 599 or status == 206 or status == 304:
        return StoreDecision("status")
    if policy.respect_request_cache_control and request_cache_control(request_headers).no_store:
        return StoreDecision("request-no-store")
    headers = lowercase_names(response_headers)
    cc = parse_cache_control(header_values(headers, b"cache-control"))
    refusal = _refusal(status, headers, cc, request_headers, policy)
    if refusal is not None:
        return StoreDecision(refusal)
    return _plan(status, headers, cc, request_headers, policy, request_time, response_time)


def _refusal(
    status: int,
    headers: HeaderList,
    cc: CacheControl,
    request_headers: Headers,
    policy: CachePolicy,
) -> str | None:
    """The first rule of RFC 9111 §3 / the safety defaults that forbids storing, if any."""
    understood = status in UNDERSTOOD_STATUSES
    if cc.must_understand and not understood:
        return "must-understand"
    if cc.no_store and not (cc.must_understand and understood):
        return "no-store"
    if cc.private:
        return "private"
    if b"*" in vary_field_names(headers):
        return "vary-star"
    return _request_refusal(cc, request_headers, policy) or _size_refusal(headers, policy)


def _request_refusal(cc: CacheControl, request_headers: Headers, policy: CachePolicy) -> str | None:
    names = {name for name, _ in request_headers}
    explicit_share = cc.public or cc.s_maxage is not None
    if (
        b"authorization" in names
        and not policy.cache_authorized
        and not (explicit_share or cc.must_revalidate)
    ):
        return "authorization"
    if not explicit_share and not names.isdisjoint(policy.personal_fields):
        return "private-request-header"
    return None


def _size_refusal(headers: HeaderList, policy: CachePolicy) -> str | None:
    length = _content_length(headers)
    if length is not None and policy.max_body_bytes is not None:
        return "body-too-large" if length > policy.max_body_bytes else None
    return None


def _content_length(headers: Headers) -> int | None:
    values = header_values(headers, b"content-length")
    if len(values) != 1:
        return None
    digits = values[0].strip().lstrip(b"0") or b"0"
    if not digits.isdigit():
        return None
    # Longer than any body: saturate before int() sees it (it raises past 4,300 digits).
    # The length then matches no body, so the response is not stored.
    return _HUGE_LENGTH if len(digits) > _MAX_LENGTH_DIGITS else int(digits)


def storable_headers(headers: Headers, cc: CacheControl) -> HeaderList:
    """The fields kept in the stored copy: all but hop-by-hop fields, fields named in
    Connection, fields named by `private="..."`/`no-cache="..."`, and Age (recomputed on use)
    (RFC 9111 §3.1, §5.2.2.4, §5.2.2.7)."""
    drop = (
        HOP_BY_HOP | connection_options(headers) | cc.private_fields | cc.no_cache_fields | {b"age"}
    )
    return [(name, value) for name, value in headers if name not in drop]


def _plan(
    status: int,
    headers: HeaderList,
    cc: CacheControl,
    request_headers: Headers,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
) -> StoreDecision:
    stored = storable_headers(headers, cc)
    if not policy.store_set_cookie and any(name == b"set-cookie" for name, _ in stored):
        return StoreDecision("set-cookie")
    date = _date(headers, response_time)
    stored = _date_first(stored, response_time)
    lifetime, source = freshness_lifetime(status, headers, cc, policy, date, response_time)
    if lifetime is None:
        return StoreDecision(source)
    etag = _first(stored, b"etag")
    last_modified = _first(stored, b"last-modified")
    vary = vary_values(keyed_field_names(headers, request_headers), request_headers)
    if not _encodable(stored, vary, etag, last_modified):
        return StoreDecision("invalid-header")
    age_value = age_header_value(header_values(headers, b"age"))
    if age_value is None:  # an age we cannot read: its freshness cannot be trusted (§5.1)
        lifetime = 0.0
    initial_age = corrected_initial_age(
        age_value=age_value or 0.0,
        date=date,
        request_time=request_time,
        response_time=response_time,
    )
    flags = _flags(cc)
    swr, sie = float(cc.stale_while_revalidate or 0), float(cc.stale_if_error or 0)
    validators = bool(etag or last_modified)
    if cc.no_cache and not validators:
        return StoreDecision("no-cache-without-validator")
    storage_ttl = kept_for(cc, lifetime - initial_age, swr, sie, validators, policy)
    if storage_ttl <= 0:
        return StoreDecision("stale-on-arrival")
    response = StoredResponse(
        status=status,
        headers=tuple(stored),
        body=b"",
        request_time=request_time,
        response_time=response_time,
        date=date,
        initial_age=initial_age,
        lifetime=lifetime,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        flags=flags,
        etag=etag,
        last_modified=last_modified,
        vary=vary,
    )
    plan = StoragePlan(
        response,
        content_length=_content_length(headers),
        max_body_bytes=policy.max_body_bytes,
        storage_ttl=storage_ttl,
    )
    return StoreDecision(source, plan)


def _date(headers: Headers, response_time: float) -> float:
    """The Date value, or the time received when it is missing or invalid (RFC 9110 §6.6.1)."""
    values = header_values(headers, b"date")
    parsed = parse_http_date(values[0], now=response_time) if len(values) == 1 else None
    return response_time if parsed is None else parsed


def _date_first(headers: HeaderList, response_time: float) -> HeaderList:
    """The stored fields with exactly one Date, first: the app's first line, or the time the
    response was received when it sent none (RFC 9110 §6.6.1). A hit under a server that
    adds its own Date then leaves this one out with a slice (`hit_response`)."""
    dates = header_values(headers, b"date")
    date = dates[0] if dates else format_http_date(response_time)
    return [(b"date", date), *((name, value) for name, value in headers if name != b"date")]


def _flags(cc: CacheControl) -> int:
    return (
        (FLAG_NO_CACHE if cc.no_cache else 0)
        | (FLAG_MUST_REVALIDATE if cc.must_revalidate else 0)
        | (FLAG_PROXY_REVALIDATE if cc.proxy_revalidate else 0)
        | (FLAG_S_MAXAGE if cc.s_maxage is not None else 0)
        | (FLAG_PUBLIC if cc.public else 0)
    )


def _first(headers: Headers, name: bytes) -> bytes:
    values = header_values(headers, name)
    return values[0].strip() if values else b""


def _encodable(
    headers: Sequence[Header], vary: VaryValues, etag: bytes, last_modified: bytes
) -> bool:
    if len(etag) > 0xFFFF or len(last_modified) > 0xFFFF:
        return False
    pieces = [piece for pair in headers for piece in pair]
    pieces += [name for name, _ in vary] + [value for _, value in vary if value is not None]
    return not any(b"\0" in piece for piece in pieces)
