"""The HTTP caching rules of the middleware: pure functions and immutable data, no I/O.

Nothing here reads a clock, awaits, or imports Starlette: headers are ASGI `(name, value)`
byte pairs, times are epoch seconds given by the caller. The rules live in sibling modules
(one module per concern); this package is what the middleware and routes import.

How a request flows through them::

    key = request_key(scheme, host, path, query)       # or the user's key_func
    raw = await backend.get(key)                        # I/O: the middleware
    entry = decode_entry(raw) if raw else None          # None also for garbage
    d = decide_lookup(entry, headers, policy=p, now=t) if entry else decide_miss(headers, policy=p)
    SERVE           -> hit_response(entry, d, status.hit(d.ttl))
    SERVE_STALE     -> the same, plus one background revalidation
    REVALIDATE      -> app(revalidation_headers(...)) then decide_revalidation(...)
    FORWARD         -> app(...) then decide_storage(...) and plan.entry(body) -> encode_entry
    GATEWAY_TIMEOUT -> 504 with status.detail("only-if-cached")

Map of the standards to the functions:

==========================  ==========================================================
RFC 9111 §1.2.2             `MAX_DELTA_SECONDS`, `parse_delta_seconds`
RFC 9111 §2, §4.1           `request_key`, `canonical_url`, `qualified_key`, `vary_values`,
                            `vary_matches`, `keyed_field_names`, `FORWARDING_FIELDS`
RFC 9111 §4.1, 9110 §12.5   `normalise_field_value`, `preference_list`
RFC 9111 §3, §3.5           `decide_storage`, `StoreDecision`, `CachePolicy`
RFC 9111 §3.1               `storable_headers`, `strip_hop_by_hop`, `HOP_BY_HOP`
RFC 9111 §3.2, §4.3.4       `merge_headers`, `freshen`, `validators_agree`, `select_updated`
RFC 9111 §3.3               `StoragePlan.entry` (incomplete bodies are not stored)
RFC 9111 §4.2.1             `explicit_lifetime`
RFC 9111 §4.2.2             `heuristic_lifetime`
RFC 9111 §4.2.3, §5.1       `corrected_initial_age`, `current_age`, `age_header_value`,
                            `whole_seconds`, `StoredResponse.age`, `StoredResponse.ttl`
RFC 9111 §4.2.4             `decide_lookup` (never stale when forbidden)
RFC 9111 §4.3.1             `revalidation_headers`
RFC 9111 §4.3.2             `not_modified` (client conditionals from a stored response)
RFC 9111 §4.3.3             `decide_revalidation`
RFC 9111 §4.4               `invalidation_targets`, `same_origin_reference`
RFC 9110 §9.3.3             `post_content_target`, `decide_post_storage`
RFC 9111 §5.2, §5.4         `parse_cache_control`, `request_cache_control`, `CacheControl`
RFC 9110 §5.6.7             `parse_http_date`, `format_http_date`
RFC 9110 §8.8.3             `generate_etag`, `parse_entity_tags`, `weak_match`, `strong_match`
RFC 9110 §13.1.2-3, §13.2.2 `not_modified`
RFC 9110 §15.4.5            `not_modified_headers`, `hit_response`
RFC 5861 §3                 `Action.SERVE_STALE`
RFC 5861 §4                 `stale_if_error_allows`, `stale_on_error`,
                            `Revalidation.STALE_ON_ERROR`
RFC 9211                    `CacheStatus`
==========================  ==========================================================

Stored responses travel as bytes: `encode_entry` / `decode_entry` (`entry`).
"""

from __future__ import annotations

from .cache_control import (
    MAX_DELTA_SECONDS,
    NO_DIRECTIVES,
    CacheControl,
    parse_cache_control,
    parse_delta_seconds,
    request_cache_control,
)
from .cache_status import DEFAULT_CACHE_NAME, FORWARD_REASONS, CacheStatus
from .conditional import (
    NOT_MODIFIED_FIELDS,
    generate_etag,
    is_weak,
    not_modified,
    not_modified_headers,
    parse_entity_tags,
    strong_match,
    weak_match,
)
from .dates import format_http_date, parse_http_date
from .entry import MAGIC, StoredResponse, decode_entry, encode_entry
from .freshness import (
    age_header_value,
    corrected_initial_age,
    current_age,
    explicit_lifetime,
    heuristic_lifetime,
    whole_seconds,
)
from .headers import (
    FORWARDING_FIELDS,
    HOP_BY_HOP,
    Header,
    HeaderList,
    Headers,
    VaryValues,
    combined_value,
    connection_options,
    header_values,
    keyed_field_names,
    lowercase_names,
    normalise_field_value,
    preference_list,
    split_list,
    strip_hop_by_hop,
    vary_field_names,
    vary_matches,
    vary_values,
)
from .keys import (
    SAFE_METHODS,
    PathFilter,
    TargetURL,
    canonical_query,
    canonical_url,
    invalidation_targets,
    qualified_key,
    request_key,
    same_origin_reference,
)
from .lookup import (
    CONDITIONAL_FIELDS,
    Action,
    LookupDecision,
    decide_lookup,
    decide_miss,
    hit_response,
    revalidation_headers,
    stale_if_error_allows,
    stale_on_error,
    without_conditionals,
)
from .policy import (
    DEFAULT_CACHEABLE_STATUSES,
    DEFAULT_PRIVATE_REQUEST_HEADERS,
    UNDERSTOOD_STATUSES,
    CachePolicy,
)
from .post import EXPLICIT_FRESHNESS, decide_post_storage, post_content_target
from .store import StoragePlan, StoreDecision, decide_storage, storable_headers
from .validation import (
    PROTECTED_FIELDS,
    Revalidation,
    RevalidationDecision,
    decide_revalidation,
    freshen,
    merge_headers,
    select_updated,
    validators_agree,
)

__all__ = [
    "CONDITIONAL_FIELDS",
    "DEFAULT_CACHEABLE_STATUSES",
    "DEFAULT_CACHE_NAME",
    "DEFAULT_PRIVATE_REQUEST_HEADERS",
    "EXPLICIT_FRESHNESS",
    "FORWARDING_FIELDS",
    "FORWARD_REASONS",
    "HOP_BY_HOP",
    "MAGIC",
    "MAX_DELTA_SECONDS",
    "NOT_MODIFIED_FIELDS",
    "NO_DIRECTIVES",
    "PROTECTED_FIELDS",
    "SAFE_METHODS",
    "UNDERSTOOD_STATUSES",
    "Action",
    "CacheControl",
    "CachePolicy",
    "CacheStatus",
    "Header",
    "HeaderList",
    "Headers",
    "LookupDecision",
    "PathFilter",
    "Revalidation",
    "RevalidationDecision",
    "StoragePlan",
    "StoreDecision",
    "StoredResponse",
    "TargetURL",
    "VaryValues",
    "age_header_value",
    "canonical_query",
    "canonical_url",
    "combined_value",
    "connection_options",
    "corrected_initial_age",
    "current_age",
    "decide_lookup",
    "decide_miss",
    "decide_post_storage",
    "decide_revalidation",
    "decide_storage",
    "decode_entry",
    "encode_entry",
    "explicit_lifetime",
    "format_http_date",
    "freshen",
    "generate_etag",
    "header_values",
    "heuristic_lifetime",
    "hit_response",
    "invalidation_targets",
    "is_weak",
    "keyed_field_names",
    "lowercase_names",
    "merge_headers",
    "normalise_field_value",
    "not_modified",
    "not_modified_headers",
    "parse_cache_control",
    "parse_delta_seconds",
    "parse_entity_tags",
    "parse_http_date",
    "post_content_target",
    "preference_list",
    "qualified_key",
    "request_cache_control",
    "request_key",
    "revalidation_headers",
    "same_origin_reference",
    "select_updated",
    "split_list",
    "stale_if_error_allows",
    "stale_on_error",
    "storable_headers",
    "strip_hop_by_hop",
    "strong_match",
    "validators_agree",
    "vary_field_names",
    "vary_matches",
    "vary_values",
    "weak_match",
    "whole_seconds",
    "without_conditionals",
]
