"""Handling the app's answer to a revalidation (RFC 9111 §3.2, §4.3.3, §4.3.4; RFC 5861 §4).

A 304 freshens the stored response it names by its validator (another stored variant of the
URL when it names that one): its fields replace the stored ones (except those that
describe the stored body), its Date/Age and the new request/response times restart the age
arithmetic, and the storage rules run again on the result. A full response replaces the stored
one, or removes it when it may not be stored. A 5xx keeps the stored response, which may then
be served under `stale-if-error`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .cache_control import CacheControl, parse_cache_control
from .conditional import is_weak, not_modified, strong_match, weak_match
from .dates import format_http_date
from .entry import StoredResponse
from .freshness import whole_seconds
from .headers import HeaderList, Headers, header_values, lowercase_names
from .lookup import Action, LookupDecision, stale_on_error
from .policy import CachePolicy
from .store import StoragePlan, decide_storage, storable_headers

__all__ = [
    "PROTECTED_FIELDS",
    "Revalidation",
    "RevalidationDecision",
    "decide_revalidation",
    "freshen",
    "merge_headers",
    "select_updated",
    "validators_agree",
]

PROTECTED_FIELDS = frozenset(
    {b"content-length", b"content-encoding", b"content-type", b"content-range"}
)
"""Fields a 304 may not change in the stored response: they describe the stored body (§3.2)."""


class Revalidation(Enum):
    """What the app's answer to a revalidation request means for the stored response."""

    UPDATED = "updated"
    """304 matched: serve `entry`; store it again (`plan` set) or delete it (`plan` None)."""
    REPLACED = "replaced"
    """A storable full response: pass it on and store it with `plan.entry(body)`."""
    REMOVED = "removed"
    """A full response that may not be stored: pass it on and delete the stored one."""
    STALE_ON_ERROR = "stale-on-error"
    """A 5xx within `stale-if-error` or the cache's `stale_on_error` window (`reason` says
    which): serve the stored `entry` instead; keep it."""
    ERROR = "error"
    """A 5xx outside `stale-if-error`: pass the error on; keep the stored response."""
    MISMATCH = "mismatch"
    """A 304 whose validators do not match: delete it and ask again without conditionals."""


@dataclass(frozen=True, slots=True)
class RevalidationDecision:
    """The outcome, why, and what to serve/store (see `Revalidation` for which are set)."""

    outcome: Revalidation
    reason: str
    entry: StoredResponse | None = None
    plan: StoragePlan | None = None
    serve: LookupDecision | None = None
    """For UPDATED/STALE_ON_ERROR: Age, ttl and whether the client gets a 304."""


def merge_headers(stored: Headers, update: Headers) -> HeaderList:
    """`stored` with every field present in `update` replaced by `update`'s lines (§3.2).

    A replaced field keeps the position of its first stored line; new fields go last;
    `PROTECTED_FIELDS` in `update` are ignored.
    """
    replacements: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for name, value in update:
        if name not in PROTECTED_FIELDS:
            replacements.setdefault(name, []).append((name, value))
    merged: HeaderList = []
    for name, value in stored:
        if name not in replacements:
            merged.append((name, value))
        elif lines := replacements[name]:
            merged.extend(lines)
            replacements[name] = []
    for lines in replacements.values():
        merged.extend(lines)
    return merged


def validators_agree(entry: StoredResponse, headers: Headers) -> bool:
    """True when a 304 with `headers` applies to `entry` (§4.3.4): a strong ETag must equal
    the stored one, a weak one weakly match it; otherwise a Last-Modified must equal the stored
    one. A 304 without validators answers the conditional request built from `entry`."""
    etags = header_values(headers, b"etag")
    if etags and entry.origin_etag:
        tag = etags[0].strip()
        match = weak_match if is_weak(tag) else strong_match
        return match(tag, entry.origin_etag)
    modified = header_values(headers, b"last-modified")
    if modified and entry.last_modified:
        return modified[0].strip() == entry.last_modified
    return True


def select_updated(candidates: Iterable[StoredResponse], headers: Headers) -> StoredResponse | None:
    """The stored response a 304 that does not match the one revalidated updates (§4.3.4):
    the first candidate with the 304's ETag (strongly equal, or weakly for a weak ETag), else,
    without an ETag, with its Last-Modified. None when the 304 names none of them; it then
    updates nothing, and the request is sent again without conditionals."""
    update = lowercase_names(headers)
    etags = header_values(update, b"etag")
    modified = header_values(update, b"last-modified")
    for entry in candidates:
        if etags:
            tag = etags[0].strip()
            match = weak_match if is_weak(tag) else strong_match
            if entry.origin_etag and match(tag, entry.origin_etag):
                return entry
        elif modified and entry.last_modified == modified[0].strip():
            return entry
    return None


def freshen(
    entry: StoredResponse,
    response_headers: Headers,
    request_headers: Headers,
    *,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
) -> tuple[StoredResponse, StoragePlan | None]:
    """The stored response updated by a 304 (§4.3.4), and its storage plan (None when the
    updated response may no longer be stored)."""
    update = lowercase_names(response_headers)
    if not header_values(update, b"date"):
        update.append((b"date", format_http_date(response_time)))
    ages = [(b"age", value) for value in header_values(update, b"age")]
    update = storable_headers(update, parse_cache_control(header_values(update, b"cache-control")))
    base = entry.headers
    if entry.etag_generated and not header_values(update, b"etag"):
        base = tuple(pair for pair in base if pair[0] != b"etag")  # regenerated from the body
    merged = merge_headers(base, update)
    decision = decide_storage(
        "GET",
        request_headers,
        entry.status,
        merged + ages,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )
    fresh = decision.plan.entry(entry.body) if decision.plan is not None else None
    if fresh is not None:
        return fresh, decision.plan
    unstored = entry._replace(
        headers=tuple(merged),
        request_time=request_time,
        response_time=response_time,
        date=response_time,
        initial_age=0.0,
        lifetime=0.0,
    )
    return unstored, None


def decide_revalidation(
    entry: StoredResponse,
    status: int,
    response_headers: Headers,
    request_headers: Headers,
    *,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
    request_cc: CacheControl | None = None,
) -> RevalidationDecision:
    """Decide what the app's answer (`status`, `response_headers`) to a revalidation of
    `entry` means. `request_headers` are the client's own (its conditionals decide whether it
    gets a 304); `request_cc` its directives when they are respected (for stale-if-error)."""
    if status == 304:
        return _on_not_modified(
            entry, response_headers, request_headers, policy, request_time, response_time
        )
    if status >= 500:
        why = stale_on_error(entry, response_time, request_cc, window=policy.stale_on_error)
        if why is not None:
            serve = _serve(entry, request_headers, response_time, why)
            return RevalidationDecision(Revalidation.STALE_ON_ERROR, why, entry, None, serve)
        return RevalidationDecision(Revalidation.ERROR, "server-error")
    stored = decide_storage(
        "GET",
        request_headers,
        status,
        response_headers,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )
    if stored.plan is None:
        return RevalidationDecision(Revalidation.REMOVED, stored.reason)
    return RevalidationDecision(Revalidation.REPLACED, stored.reason, plan=stored.plan)


def _on_not_modified(
    entry: StoredResponse,
    response_headers: Headers,
    request_headers: Headers,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
) -> RevalidationDecision:
    if not validators_agree(entry, lowercase_names(response_headers)):
        return RevalidationDecision(Revalidation.MISMATCH, "validator-mismatch")
    fresh, plan = freshen(
        entry,
        response_headers,
        request_headers,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )
    serve = _serve(fresh, request_headers, response_time, "revalidated")
    reason = "freshened" if plan is not None else "freshened-not-storable"
    return RevalidationDecision(Revalidation.UPDATED, reason, fresh, plan, serve)


def _serve(
    entry: StoredResponse, request_headers: Headers, now: float, reason: str
) -> LookupDecision:
    inm = header_values(request_headers, b"if-none-match")
    ims = header_values(request_headers, b"if-modified-since")
    age = entry.age(now)
    return LookupDecision(
        Action.SERVE,
        reason,
        whole_seconds(age),
        math.floor(entry.lifetime - age),
        not_modified=bool(inm or ims) and not_modified(entry, inm, ims),
    )
