"""How long a storable response is fresh, and how long the backend keeps it.

The freshness lifetime comes from the response when it has one (`s-maxage`, `max-age`,
`Expires`: RFC 9111 §4.2.1), else from the policy's `ttl`, else from a heuristic (§4.2.2).
The backend keeps a response past its freshness for as long as something can still use it
stale: its own stale windows (RFC 5861), and `keep_stale` for a revalidation, a request's
`max-stale` or an app failure where those may use it (§4.2.4, §5.2.1.2).
"""

from __future__ import annotations

from .cache_control import CacheControl
from .dates import parse_http_date
from .freshness import explicit_lifetime, heuristic_lifetime
from .headers import HeaderList, header_values
from .policy import CachePolicy

__all__ = ["freshness_lifetime", "kept_for"]


def freshness_lifetime(
    status: int,
    headers: HeaderList,
    cc: CacheControl,
    policy: CachePolicy,
    date: float,
    now: float,
) -> tuple[float | None, str]:
    """(freshness lifetime, its source) or (None, refusal): explicit > ttl > heuristic."""
    explicit = explicit_lifetime(cc, date, header_values(headers, b"expires"), now=now)
    if explicit is not None:
        source = "s-maxage" if cc.s_maxage is not None else "max-age"
        return explicit, source if cc.has_explicit_freshness else "expires"
    if cc.no_cache and status in policy.cacheable_statuses:
        return 0.0, "no-cache"
    if status not in policy.cacheable_statuses and not cc.public:
        return None, "no-explicit-freshness"
    if policy.ttl is not None:
        return float(policy.ttl), "ttl"
    modified = [value.strip() for value in header_values(headers, b"last-modified")]
    heuristic = heuristic_lifetime(
        date,
        parse_http_date(modified[0], now=now) if modified and modified[0] else None,
        fraction=policy.heuristic_fraction,
        cap=policy.max_heuristic_lifetime,
    )
    return (heuristic, "heuristic") if heuristic is not None else (None, "no-freshness")


def kept_for(
    cc: CacheControl,
    remaining: float,
    swr: float,
    sie: float,
    validators: bool,
    policy: CachePolicy,
) -> float:
    """Remaining freshness plus the longest time the response stays usable once stale."""
    return max(0.0, remaining) + _stale_use(cc, max(swr, sie), validators, policy)


def _stale_use(cc: CacheControl, windows: float, validators: bool, policy: CachePolicy) -> float:
    """Seconds a stale response can still serve: its own stale windows, and `keep_stale` for
    a revalidation, a request's `max-stale` or an app failure where those may use it."""
    forbids_stale = cc.no_cache or cc.must_revalidate or cc.proxy_revalidate
    # s-maxage forbids serving stale to max-stale and on errors the response did not name.
    stale_by_cache = not forbids_stale and cc.s_maxage is None
    own = 0.0 if forbids_stale else windows
    usable = validators or (
        stale_by_cache and (policy.respect_request_cache_control or policy.stale_on_error > 0)
    )
    on_error = policy.stale_on_error if stale_by_cache else 0.0
    return max(own, policy.keep_stale if usable else 0.0, on_error)
