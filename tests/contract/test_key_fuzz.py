"""Any text as a key, namespace or tag: a working entry or InvalidKeyError, on every store.

Hypothesis draws text from every Unicode category, lone surrogates and control characters
included, plus the characters Redis gives a meaning to (hash-tag braces, glob characters).
Whatever the key checks let through must then work end to end: stored, read back, removed by
its tag; a fault (a raw client error, or one the service swallows) fails the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_cachekit import CacheService, InvalidKeyError

_AWKWARD = st.sampled_from(["{", "}", "*", "?", "[", "\\", ":", "\x00", "\x1f", " ", "\u00a0"])
_PRINTABLE = st.characters(exclude_categories=("Cc", "Cs"))
# Lists joined, not st.text(), which leaves surrogates out of a mixed alphabet.
_HOSTILE = st.lists(
    st.one_of(_PRINTABLE, st.characters(categories=["Cs"]), _AWKWARD), max_size=8
).map("".join)
# Mostly text that passes, so that many draws reach the backend with the awkward characters.
_TEXT = st.one_of(st.text(st.one_of(_PRINTABLE, _AWKWARD), min_size=1, max_size=8), _HOSTILE)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=_TEXT, namespace=st.none() | _TEXT, tag=_TEXT)
async def test_any_text_is_a_working_key_or_invalid_key_error(
    cache: CacheService, key: str, namespace: str | None, tag: str
) -> None:
    value: dict[str, Any] = {"n": [1, "two"]}
    try:
        stored = await cache.set(key, value, namespace=namespace, tags=[tag])
    except InvalidKeyError:
        with pytest.raises(InvalidKeyError):  # and refused by the read path too
            await cache.get_or_set_async(key, lambda: value, namespace=namespace, tags=[tag])
        return
    assert stored
    assert await cache.get(key, namespace=namespace) == value
    assert await cache.invalidate_tags([tag]) == 1
    assert not await cache.exists(key, namespace=namespace)
    assert (await cache.get_stats()).errors == 0
