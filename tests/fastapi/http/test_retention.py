"""How long a response is fresh (explicit > ttl > heuristic) and how long the backend keeps
it: `http/retention.py`, through `decide_storage`."""

from __future__ import annotations

import pytest

from fastapi_cachekit.fastapi.http import format_http_date

from .support import DEFAULT, T0, T0_HTTP, TTL, hdrs, store


def test_heuristic_only_for_heuristically_cacheable_statuses_or_public() -> None:
    modified = format_http_date(T0 - 1000).decode()
    assert store(hdrs(last_modified=modified), status=302).reason == "no-explicit-freshness"
    public = store(hdrs(last_modified=modified, cache_control="public"), status=302)
    assert public.reason == "heuristic"


def test_ttl_fills_missing_freshness() -> None:
    decision = store(hdrs(content_type="text/plain"), policy=TTL)
    assert decision.reason == "ttl"
    assert decision.plan is not None
    assert decision.plan.response.lifetime == 60


@pytest.mark.parametrize(("header", "lifetime"), [("max-age=5", 5), ("s-maxage=500", 500)])
def test_ttl_never_overrides_the_response(header: str, lifetime: float) -> None:
    plan = store(hdrs(cache_control=header), policy=TTL).plan
    assert plan is not None
    assert plan.response.lifetime == lifetime


def test_ttl_takes_precedence_over_heuristic() -> None:
    modified = format_http_date(T0 - 10**5).decode()
    plan = store(hdrs(last_modified=modified), policy=TTL).plan
    assert plan is not None
    assert plan.response.lifetime == 60


def test_ttl_does_not_apply_to_statuses_needing_explicit_freshness() -> None:
    assert store(status=302, policy=TTL).reason == "no-explicit-freshness"


def test_stale_on_arrival_without_validators_is_not_stored() -> None:
    assert store(hdrs(cache_control="max-age=10", age="20")).reason == "stale-on-arrival"
    assert store(hdrs(cache_control="max-age=0")).reason == "stale-on-arrival"


def test_stale_on_arrival_with_validators_is_kept_for_revalidation() -> None:
    plan = store(hdrs(cache_control="max-age=0", etag='"a"')).plan
    assert plan is not None
    assert plan.storage_ttl == DEFAULT.keep_stale


def test_storage_ttl_covers_freshness_stale_windows_and_revalidation() -> None:
    plan = store(
        hdrs(cache_control="max-age=60, stale-while-revalidate=30, stale-if-error=90")
    ).plan
    assert plan is not None
    assert plan.storage_ttl == 60 + 90
    with_validator = store(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode())).plan
    assert with_validator is not None
    assert with_validator.storage_ttl == 60 + DEFAULT.keep_stale
    forbidding = store(hdrs(cache_control="max-age=60, must-revalidate, stale-if-error=90")).plan
    assert forbidding is not None
    assert forbidding.storage_ttl == 60
